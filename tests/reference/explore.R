# Issue 18: reference numbers for the exploratory causal forest's calibration (hte_report.exploratory).
#
# Input: tests/reference/data/explore_{nsw,nsw_binary,sim}.csv -- the outcome y, treatment w,
# cross-fitted nuisance predictions y_hat = m(x), w_hat = e(x) and out-of-bag CATE tau exported
# from a seeded EconML causal forest (python tests/test_explore_reference.py), the
# cross-fitted priorities prio (CATE from a forest grown without the patient's fold) and fold,
# plus the pre-specified modifiers. Everything below is a deterministic function of those numbers.
#
#   * test_calibration as grf: lm(y - y_hat ~ 0 + mean.forest.prediction +
#     differential.forest.prediction), coeftest with vcovHC(type = "HC3"), one-sided p
#     (grf uses vcovCL(type = "HC3") with one cluster per row: HC3 times n / (n - 1)).
#   * DR scores as grf's causal forest; best linear projection lm(score ~ modifiers), HC3.
#   * GATES: lm(score ~ 0 + factor(group)), HC3; groups ceiling(5 * rank(prio, "first") / n_f)
#     within each fold;
#     Wald chi-square of equal coefficients; top - bottom.
#   * RATE: closed forms written independently of the Python code, from the sorted scores
#     s_(1..n) (decreasing priority, tied priorities sharing their mean score):
#       AUTOC = sum_i s_(i) * (1/n) sum_{j >= i} 1/j  -  mean(s)
#       Qini  = (1/n^2) sum_j S_j  -  mean(s) (n + 1) / (2 n),   S_j = s_(1) + ... + s_(j)
#     and the TOC at q = 0.05, ..., 1: mean of the top ceiling(q n) scores minus mean(s).
#     computed per fold (priorities prio) and weighted by fold size ("autoc_pooled",
#     "qini_pooled": the whole sample as one fold). "rate_ties" uses priorities round(prio, 1).
#
# Run from the repository root: Rscript tests/reference/explore.R  -> tests/reference/explore.json
suppressPackageStartupMessages({
  library(sandwich); library(lmtest); library(jsonlite)
})

modifiers <- list(nsw = c("age", "black", "nodegree", "re75"),
                  nsw_binary = c("age", "black", "nodegree", "re75"),
                  sim = c("x1", "x2", "g"))

rate_by_fold <- function(score, priority, fold) {
  # each fold ranked by its own priorities; fold values weighted by fold size
  parts <- lapply(split(seq_along(score), fold), function(i)
    c(rate_closed_form(score[i], priority[i]), list(w = length(i) / length(score))))
  pooled <- rate_closed_form(score, priority)
  list(autoc = sum(sapply(parts, function(p) p$w * p$autoc)),
       qini = sum(sapply(parts, function(p) p$w * p$qini)),
       toc = Reduce(`+`, lapply(parts, function(p) p$w * p$toc)),
       autoc_pooled = pooled$autoc, qini_pooled = pooled$qini)
}

rate_closed_form <- function(score, priority) {
  n <- length(score)
  s <- ave(score, priority)                      # tied priorities share their mean score
  s <- s[order(-priority)]
  w <- rev(cumsum(rev(1 / seq_len(n)))) / n      # (1/n) sum_{j >= i} 1/j
  autoc <- sum(s * w) - mean(s)
  S <- cumsum(s)
  qini <- sum(S) / n^2 - mean(s) * (n + 1) / (2 * n)
  q <- (1:20) / 20
  k <- pmax(1, ceiling(q * n - 1e-9))
  toc <- sapply(k, function(kk) mean(s[1:kk])) - mean(s)
  list(autoc = autoc, qini = qini, toc = toc)
}

one_case <- function(case) {
  d <- read.csv(file.path("tests/reference/data", paste0("explore_", case, ".csv")))
  n <- nrow(d)
  # test_calibration
  mp <- mean(d$tau)
  cal_df <- data.frame(target = d$y - d$y_hat,
                       mean.forest.prediction = (d$w - d$w_hat) * mp,
                       differential.forest.prediction = (d$w - d$w_hat) * (d$tau - mp))
  fit <- lm(target ~ 0 + mean.forest.prediction + differential.forest.prediction, data = cal_df)
  ct <- coeftest(fit, vcov. = vcovHC(fit, type = "HC3"))
  calib <- list()
  for (term in rownames(ct)) {
    tval <- ct[term, "t value"]
    calib[[term]] <- list(estimate = ct[term, "Estimate"], std_error = ct[term, "Std. Error"],
                          statistic = tval, df = fit$df.residual,
                          p_one_sided = pt(tval, fit$df.residual, lower.tail = FALSE))
  }
  # DR scores and the best linear projection
  score <- d$tau + (d$w - d$w_hat) / (d$w_hat * (1 - d$w_hat)) *
    (d$y - d$y_hat - (d$w - d$w_hat) * d$tau)
  A <- d[, modifiers[[case]], drop = FALSE]
  bfit <- lm(score ~ ., data = cbind(score = score, A))
  bct <- coeftest(bfit, vcov. = vcovHC(bfit, type = "HC3"))
  bci <- coefci(bfit, vcov. = vcovHC(bfit, type = "HC3"), level = 0.95)
  b0 <- lm(score ~ 1)
  b0ct <- coeftest(b0, vcov. = vcovHC(b0, type = "HC3"))
  blp <- list(term = rownames(bct), estimate = unname(bct[, 1]), std_error = unname(bct[, 2]),
              statistic = unname(bct[, 3]), p_value = unname(bct[, 4]),
              conf_low = unname(bci[, 1]), conf_high = unname(bci[, 2]))
  # GATES
  group <- integer(n)                            # quintile groups of prio within each fold
  for (f in unique(d$fold)) {
    i <- which(d$fold == f)
    group[i] <- ceiling(5 * rank(d$prio[i], ties.method = "first") / length(i))
  }
  gfit <- lm(score ~ 0 + factor(group))
  V <- vcovHC(gfit, type = "HC3")
  gct <- coeftest(gfit, vcov. = V)
  gci <- coefci(gfit, vcov. = V, level = 0.95)
  b <- coef(gfit)
  L <- cbind(-1, diag(4))
  dd <- L %*% b
  chi2 <- as.numeric(t(dd) %*% solve(L %*% V %*% t(L)) %*% dd)
  tb <- unname(b[5] - b[1])
  tb_se <- sqrt(V[5, 5] + V[1, 1] - 2 * V[1, 5])
  gates <- list(group_of_row = group, n = as.integer(table(group)),
                estimate = unname(gct[, 1]), std_error = unname(gct[, 2]),
                p_value = unname(gct[, 4]), conf_low = unname(gci[, 1]),
                conf_high = unname(gci[, 2]), wald_chi2 = chi2,
                wald_p = pchisq(chi2, 4, lower.tail = FALSE), top_bottom = tb,
                top_bottom_se = tb_se,
                top_bottom_p = 2 * pt(abs(tb / tb_se), gfit$df.residual, lower.tail = FALSE))
  list(n = n, calibration = calib, dr_scores = score, blp = blp,
       blp_intercept_only = list(estimate = b0ct[1, 1], std_error = b0ct[1, 2]),
       gates = gates, rate = rate_by_fold(score, d$prio, d$fold),
       rate_ties = rate_by_fold(score, round(d$prio, 1), d$fold))
}

# RMST pseudo-observations (hte_report.exploratory.pseudo): brute-force jackknife of
# survival::survfit's restricted mean, n * rmean(all) - (n - 1) * rmean(without i), on the
# Rossi recidivism data (tied weeks) at horizons 40 (an event time) and 37.5 (between them).
suppressPackageStartupMessages(library(survival))
rmean <- function(time, status, tau)
  unname(summary(survfit(Surv(time, status) ~ 1), rmean = tau)$table["rmean"])
rossi <- read.csv("tests/reference/data/rossi.csv")
pseudo <- list()
for (tau in c(40, 37.5)) {
  n <- nrow(rossi)
  all <- rmean(rossi$week, rossi$arrest, tau)
  loo <- sapply(seq_len(n), function(i) rmean(rossi$week[-i], rossi$arrest[-i], tau))
  pseudo[[as.character(tau)]] <- list(rmst = all, pseudo = n * all - (n - 1) * loo)
}

out <- list(generated_by = paste("tests/reference/explore.R;", R.version.string,
                                 "; sandwich", as.character(packageVersion("sandwich")),
                                 "; lmtest", as.character(packageVersion("lmtest"))))
for (case in names(modifiers)) out[[case]] <- one_case(case)
out$rmst_pseudo <- pseudo
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE),
           "tests/reference/explore.json")
