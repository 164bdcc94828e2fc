# Independent R reference numbers for hte_report's risk-based (PATH) analysis, spline effect
# curves, STEPP windows, ridge-penalized interactions and c-for-benefit.
#
# Regenerate from the repository root:
#     Rscript tests/reference/risk.R
#
# Reads  tests/reference/data/rossi.csv
# Writes tests/reference/risk.json
#
# Needs R >= 4.2 with pROC, sandwich, Hmisc, survival, jsonlite (splines, stats are base).
# Definitions: see the "definitions" entry of the JSON and tests/reference/README.md.

suppressPackageStartupMessages({
  library(stats)
  library(splines)
  library(sandwich)
  library(pROC)
  library(Hmisc)
  library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
out_file <- file.path(ref_dir, "risk.json")

Z <- qnorm(0.975)
CTRL <- glm.control(epsilon = 1e-15, maxit = 500)
p_norm <- function(stat) 2 * pnorm(-abs(stat))
expit <- function(x) 1 / (1 + exp(-x))

d <- read.csv(file.path(ref_dir, "data", "rossi.csv"))
n <- nrow(d)
y <- d$arrest
t <- d$fin
RISK <- arrest ~ age + prio + wexp + mar + paro + race

# ---------------------------------------------------------------------------- helpers
wald_chisq <- function(b, V) {
  W <- as.numeric(t(b) %*% solve(V, b))
  list(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}
coef_table <- function(fit) {
  s <- summary(fit)$coefficients
  list(term = rownames(s), estimate = unname(s[, 1]), std_error = unname(s[, 2]))
}

# c-statistic (pROC, DeLong) and recalibration fits, in one population
performance <- function(yy, risk, lp) {
  r <- pROC::roc(yy, risk, levels = c(0, 1), direction = "<", quiet = TRUE)
  v <- pROC::var(r, method = "delong")
  ci <- pROC::ci.auc(r, method = "delong")
  citl <- glm(yy ~ offset(lp), family = binomial(), control = CTRL)
  slope <- glm(yy ~ lp, family = binomial(), control = CTRL)
  # cross-check: survival::concordance gives the same c (ties in the score count one half)
  conc <- survival::concordance(yy ~ risk)$concordance
  list(n = length(yy), events = sum(yy),
       c_statistic = list(estimate = as.numeric(pROC::auc(r)), std_error = sqrt(v),
                          conf_low = ci[1], conf_high = ci[3], concordance = unname(conc)),
       calibration_intercept = list(estimate = unname(coef(citl)[1]),
                                    std_error = sqrt(vcov(citl)[1, 1])),
       calibration_slope = list(estimate = unname(coef(slope)[2]),
                                std_error = sqrt(vcov(slope)[2, 2])))
}

quantile_groups <- function(x, k) {
  br <- unique(quantile(x, probs = seq(0, 1, length.out = k + 1), type = 7))
  list(code = as.integer(cut(x, br, include.lowest = TRUE, right = TRUE)), breaks = br)
}

grouped_calibration <- function(yy, risk, k = 10) {
  g <- quantile_groups(risk, k)
  lapply(seq_len(length(g$breaks) - 1), function(j) {
    s <- g$code == j
    bt <- binom.test(sum(yy[s]), sum(s))
    list(group = j, n = sum(s), events = sum(yy[s]), predicted = mean(risk[s]),
         observed = mean(yy[s]), conf_low = bt$conf.int[1], conf_high = bt$conf.int[2])
  })
}

# textbook 2x2 effects: Wald RD, Katz log RR, Woolf log OR
two_by_two <- function(yy, tt) {
  a <- sum(yy[tt == 1]); n1 <- sum(tt == 1)
  c <- sum(yy[tt == 0]); n0 <- sum(tt == 0)
  p1 <- a / n1; p0 <- c / n0
  rd <- p1 - p0; se_rd <- sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
  lrr <- log(p1 / p0); se_lrr <- sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
  lor <- log(a * (n0 - c) / (c * (n1 - a)))
  se_lor <- sqrt(1 / a + 1 / (n1 - a) + 1 / c + 1 / (n0 - c))
  row <- function(scale, th, se, ratio) {
    list(scale = scale, estimate = if (ratio) exp(th) else th, std_error = se,
         conf_low = if (ratio) exp(th - Z * se) else th - Z * se,
         conf_high = if (ratio) exp(th + Z * se) else th + Z * se,
         statistic = th / se, p_value = p_norm(th / se), theta = th)
  }
  list(n = length(yy), n_treated = n1, n_control = n0, events_treated = a,
       events_control = c,
       effects = list(row("RD", rd, se_rd, FALSE), row("RR", lrr, se_lrr, TRUE),
                      row("OR", lor, se_lor, TRUE)))
}

# stratum effects and the Wald test of equality across strata (independent strata)
strata_effects <- function(yy, tt, risk, code) {
  K <- max(code)
  st <- lapply(seq_len(K), function(j) {
    s <- code == j
    c(list(stratum = j, mean_risk = mean(risk[s])), two_by_two(yy[s], tt[s]))
  })
  eq <- lapply(1:3, function(e) {
    th <- sapply(st, function(s) s$effects[[e]]$theta)
    se <- sapply(st, function(s) s$effects[[e]]$std_error)
    C <- cbind(-1, diag(K - 1))
    c(list(scale = st[[1]]$effects[[e]]$scale), wald_chisq(C %*% th, C %*% diag(se^2) %*% t(C)))
  })
  list(strata = st, equality = eq)
}

# treatment x linear predictor: RD (lm, HC3), log RR (Poisson, HC0), log OR (logit; Wald, LR)
lp_tests <- function(yy, tt, lp) {
  f_ols <- lm(yy ~ tt * lp)
  f_mp <- glm(yy ~ tt * lp, family = poisson(), control = CTRL)
  f_lg <- glm(yy ~ tt * lp, family = binomial(), control = CTRL)
  f_lg0 <- glm(yy ~ tt + lp, family = binomial(), control = CTRL)
  one <- function(fit, V, scale) {
    b <- coef(fit)["tt:lp"]; c(list(scale = scale), wald_chisq(b, V["tt:lp", "tt:lp", drop = FALSE]))
  }
  lr <- 2 * as.numeric(logLik(f_lg) - logLik(f_lg0))
  list(one(f_ols, vcovHC(f_ols, type = "HC3"), "RD"),
       one(f_mp, vcovHC(f_mp, type = "HC0"), "RR"),
       one(f_lg, vcov(f_lg), "OR"),
       list(scale = "OR", test = "lr", statistic = lr, df = 1,
            p_value = pchisq(lr, 1, lower.tail = FALSE)))
}

# conditional RD and RR of the logit treat x lp model on a grid of lp (delta method)
benefit_curve <- function(yy, tt, lp, size = 61) {
  fit <- glm(yy ~ tt * lp, family = binomial(), control = CTRL)
  b <- coef(fit); V <- vcov(fit)
  grid <- seq(min(lp), max(lp), length.out = size)
  X1 <- cbind(1, 1, grid, grid); X0 <- cbind(1, 0, grid, 0)
  m1 <- expit(drop(X1 %*% b)); m0 <- expit(drop(X0 %*% b))
  G1 <- X1 * (m1 * (1 - m1)); G0 <- X0 * (m0 * (1 - m0))
  Grd <- G1 - G0; Grr <- G1 / m1 - G0 / m0
  list(lp = grid, mu_treated = m1, mu_control = m0,
       rd = m1 - m0, rd_se = sqrt(rowSums((Grd %*% V) * Grd)),
       rr = m1 / m0, log_rr_se = sqrt(rowSums((Grr %*% V) * Grr)))
}

risk_case <- function(name, lp, method, folds = NULL, k_strata = 4, cutpoints = NULL,
                      coefs = NULL) {
  cat("== risk case", name, "\n")
  risk <- expit(lp)
  pops <- list(all = rep(TRUE, n), control = t == 0, treated = t == 1)
  perf <- lapply(pops, function(s) performance(y[s], risk[s], lp[s]))
  calib <- lapply(pops, function(s) grouped_calibration(y[s], risk[s], 10))
  if (is.null(cutpoints)) {
    g <- quantile_groups(risk, k_strata)
    code <- g$code; br <- g$breaks
  } else {
    br <- c(0, cutpoints, 1)
    code <- as.integer(cut(risk, br, include.lowest = TRUE, right = TRUE))
  }
  list(case = name, method = method, folds = folds, cutpoints = cutpoints, breaks = br,
       coefficients = coefs, lp = lp, performance = perf, calibration = calib,
       strata = strata_effects(y, t, risk, code), lp_tests = lp_tests(y, t, lp),
       curve = benefit_curve(y, t, lp))
}

# ---------------------------------------------------------------------------- risk cases
cases <- list()
dd0 <- transform(d, fin = 0)

fit_pooled <- glm(RISK, family = binomial(), data = d, control = CTRL)
cases[[length(cases) + 1]] <- risk_case("pooled", predict(fit_pooled), "pooled",
                                        coefs = coef_table(fit_pooled))

fit_pt <- glm(update(RISK, . ~ fin + .), family = binomial(), data = d, control = CTRL)
cases[[length(cases) + 1]] <- risk_case("pooled_treatment", predict(fit_pt, newdata = dd0),
                                        "pooled", coefs = coef_table(fit_pt))

fit_ctl <- glm(RISK, family = binomial(), data = d[d$fin == 0, ], control = CTRL)
cases[[length(cases) + 1]] <- risk_case("control_arm", predict(fit_ctl, newdata = d),
                                        "control-arm", coefs = coef_table(fit_ctl))

cases[[length(cases) + 1]] <- risk_case("pooled_cutpoints", predict(fit_pooled), "pooled",
                                        cutpoints = c(0.2, 0.3, 0.4),
                                        coefs = coef_table(fit_pooled))

folds <- (seq_len(n) - 1) %% 5 + 1         # fold of row i: ((i - 1) mod 5) + 1
crossfit <- function(develop) {
  lp <- numeric(n)
  for (f in 1:5) {
    fit <- glm(RISK, family = binomial(), data = d[develop & folds != f, ], control = CTRL)
    lp[folds == f] <- predict(fit, newdata = d[folds == f, ])
  }
  lp
}
cases[[length(cases) + 1]] <- risk_case("pooled_crossfit", crossfit(rep(TRUE, n)), "pooled",
                                        folds = folds, coefs = coef_table(fit_pooled))
cases[[length(cases) + 1]] <- risk_case("control_arm_crossfit", crossfit(t == 0),
                                        "control-arm", folds = folds,
                                        coefs = coef_table(fit_ctl))

# ---------------------------------------------------------------------------- spline curves
spline_case <- function() {
  cat("== spline case\n")
  fml <- arrest ~ fin * bs(age, df = 4) + prio
  mf <- model.frame(fml, d)
  tt <- terms(mf)
  X <- model.matrix(tt, mf)
  inter <- grep("^fin:", colnames(X))
  knots <- attr(bs(d$age, df = 4), "knots")
  bknots <- attr(bs(d$age, df = 4), "Boundary.knots")
  grid <- seq(min(d$age), max(d$age), length.out = 61)
  at <- c(20, 25, 30, 35)
  newd <- function(ages, f) data.frame(fin = f, age = ages, prio = mean(d$prio), arrest = 0)
  design <- function(nd) model.matrix(delete.response(tt), model.frame(delete.response(tt), nd))
  out <- list()
  for (model in c("ols", "modified-poisson", "logit")) {
    fit <- switch(model,
                  "ols" = lm(fml, data = d),
                  "modified-poisson" = glm(fml, family = poisson(), data = d, control = CTRL),
                  "logit" = glm(fml, family = binomial(), data = d, control = CTRL))
    V <- switch(model, "ols" = vcovHC(fit, type = "HC3"),
                "modified-poisson" = vcovHC(fit, type = "HC0"), "logit" = vcov(fit))
    b <- coef(fit)
    effects_at <- function(ages) {
      X1 <- design(newd(ages, 1)); X0 <- design(newd(ages, 0))
      e1 <- drop(X1 %*% b); e0 <- drop(X0 %*% b)
      if (model == "ols") {
        th <- e1 - e0; G <- X1 - X0
      } else {
        th <- e1 - e0; G <- X1 - X0    # log RR (log link) or log OR (logit): linear in b
      }
      se <- sqrt(rowSums((G %*% V) * G))
      ratio <- model != "ols"
      list(value = ages, estimate = if (ratio) exp(th) else th, std_error = se,
           conf_low = if (ratio) exp(th - Z * se) else th - Z * se,
           conf_high = if (ratio) exp(th + Z * se) else th + Z * se,
           p_value = p_norm(th / se))
    }
    w <- wald_chisq(b[inter], V[inter, inter])
    lr <- NULL
    if (model == "logit") {
      red <- glm(y ~ 0 + X[, -inter], family = binomial(), control = CTRL)
      stat <- 2 * as.numeric(logLik(fit) - logLik(red))
      lr <- list(statistic = stat, df = length(inter),
                 p_value = pchisq(stat, length(inter), lower.tail = FALSE))
    }
    out[[model]] <- list(model = model, coefficients = unname(b), columns = names(b),
                         wald = w, lr = lr, curve = effects_at(grid), at = effects_at(at))
  }
  list(formula_r = "arrest ~ fin * bs(age, df = 4) + prio",
       knots = unname(knots), boundary_knots = bknots, prio_mean = mean(d$prio),
       fits = out)
}

# ---------------------------------------------------------------------------- STEPP
stepp_case <- function(size = 120, overlap = 80) {
  cat("== STEPP case\n")
  x <- d$age
  s <- sort(x)
  step <- size - overlap
  starts <- seq(1, n - size + 1, by = step)
  if (tail(starts, 1) + size - 1 < n) starts <- c(starts, n - size + 1)
  wins <- list(); seen <- character(0)
  for (a in starts) {
    lo <- s[a]; hi <- s[a + size - 1]
    key <- paste(lo, hi)
    if (key %in% seen) next
    seen <- c(seen, key)
    m <- x >= lo & x <= hi
    wins[[length(wins) + 1]] <- c(list(low = lo, high = hi, median = median(x[m])),
                                  two_by_two(y[m], t[m]))
  }
  list(size = size, overlap = overlap, windows = wins, overall = two_by_two(y, t))
}

# ---------------------------------------------------------------------------- ridge, c-for-benefit
ridge_logit <- function(X, yy, pen, b = rep(0, ncol(X))) {
  nn <- length(yy)
  for (it in 1:200) {
    mu <- expit(drop(X %*% b))
    g <- crossprod(X, yy - mu) / nn - pen * b
    H <- crossprod(X * (mu * (1 - mu)), X) / nn + diag(pen)
    step <- solve(H, g)
    b <- b + drop(step)
    if (max(abs(step)) < 1e-11) return(b)
  }
  stop("no convergence")
}

match_on_benefit <- function(pb, tt) {
  tr <- which(tt == 1); co <- which(tt == 0)
  tr <- tr[order(pb[tr])]; co <- co[order(pb[co])]     # order() is stable: ties by row
  if (length(tr) <= length(co)) { small <- tr; large <- co } else { small <- co; large <- tr }
  m <- length(small); M <- length(large)
  pick <- large[floor(((seq_len(m) - 1) + 0.5) * M / m) + 1]
  if (length(tr) <= length(co)) list(t = small, c = pick) else list(t = pick, c = small)
}

c_for_benefit <- function(pb, tt, yy) {
  p <- match_on_benefit(pb, tt)
  pred <- (pb[p$t] + pb[p$c]) / 2
  obs <- yy[p$c] - yy[p$t]
  rc <- Hmisc::rcorr.cens(pred, obs)
  list(estimate = unname(rc["C Index"]), n_pairs = length(pred))
}

ridge_case <- function(lambda_fixed = 0.05) {
  cat("== ridge case\n")
  fml <- arrest ~ fin * (age + prio + wexp + paro + race)   # fin x mar separates in a fold
  X <- model.matrix(fml, d)
  inter <- grep("^fin:", colnames(X))
  sdv <- rep(0, ncol(X))
  sdv[inter] <- apply(X[, inter], 2, function(v) sqrt(mean((v - mean(v))^2)))
  X1 <- X; X0 <- X
  X1[, "fin"] <- 1; X0[, "fin"] <- 0
  X1[, inter] <- X[, sub("^fin:", "", colnames(X)[inter])]
  X0[, inter] <- 0
  benefit <- function(b) expit(drop(X0 %*% b)) - expit(drop(X1 %*% b))
  b_ml <- ridge_logit(X, y, rep(0, ncol(X)))
  b_glm <- coef(glm(fml, family = binomial(), data = d, control = CTRL))
  b_fix <- ridge_logit(X, y, lambda_fixed * sdv^2, b_ml)
  lambdas <- 10^seq(-4, 0, length.out = 9)
  dev <- matrix(NA, 5, length(lambdas))
  for (f in 1:5) {
    tr <- folds != f; te <- folds == f
    b <- ridge_logit(X[tr, ], y[tr], rep(0, ncol(X)))
    for (j in seq_along(lambdas)) {
      b <- ridge_logit(X[tr, ], y[tr], lambdas[j] * sdv^2, b)
      mu <- expit(drop(X[te, ] %*% b))
      dev[f, j] <- -2 * mean(y[te] * log(mu) + (1 - y[te]) * log(1 - mu))
    }
  }
  best <- which.min(colMeans(dev))
  b_cv <- ridge_logit(X, y, lambdas[best] * sdv^2, b_ml)
  list(formula_r = deparse(fml), columns = colnames(X), sd = sdv,
       unpenalized = unname(b_ml), glm = unname(b_glm),
       lambda_fixed = lambda_fixed, ridge_fixed = unname(b_fix),
       folds = folds, lambdas = lambdas, cv_deviance = colMeans(dev),
       cv_std_error = apply(dev, 2, sd) / sqrt(5), lambda_min = lambdas[best],
       ridge_cv = unname(b_cv),
       c_for_benefit_unpenalized = c_for_benefit(benefit(b_ml), t, y),
       c_for_benefit_ridge = c_for_benefit(benefit(b_cv), t, y))
}

out <- list(
  generated_by = sprintf("tests/reference/risk.R with %s; pROC %s, sandwich %s, Hmisc %s",
                         R.version.string, packageVersion("pROC"), packageVersion("sandwich"),
                         packageVersion("Hmisc")),
  data = "rossi.csv",
  risk_formula = deparse(RISK),
  definitions = list(
    lp = "risk-model linear predictor (logit); pooled: glm on all rows without fin; pooled_treatment: fin as main effect, predicted with fin = 0; control_arm: glm on fin == 0, predicted for all; crossfit: row i in fold ((i-1) mod 5)+1 predicted from the model refitted without its fold (on all rows, or on control rows for control_arm)",
    c_statistic = "pROC::roc(direction='<'); auc, var(method='delong'), ci.auc(method='delong') = auc +/- qnorm(0.975) sqrt(var); concordance = survival::concordance(y ~ risk) (cross-check of the estimate)",
    calibration = "intercept of glm(y ~ offset(lp), binomial) and slope of glm(y ~ lp, binomial), model-based SEs; grouped: tenths of predicted risk (type-7 quantiles, cut(include.lowest = TRUE)), binom.test exact CI",
    strata = "quarters of predicted risk (type-7 quantiles, cut(include.lowest = TRUE, right = TRUE)) or cut(c(0, cutpoints, 1)); per stratum the 2x2 table: RD Wald sqrt(p1(1-p1)/n1 + p0(1-p0)/n0); RR Katz SE(log RR) = sqrt(1/a - 1/n1 + 1/c - 1/n0); OR Woolf SE(log OR) = sqrt(1/a + 1/b + 1/c + 1/d); equality: Wald chi-square of the K-1 differences from stratum 1 with independent strata",
    lp_tests = "Wald chi-square of the fin:lp coefficient in lm(y ~ fin*lp) with HC3, glm(poisson) with HC0, glm(binomial) with model vcov; LR of glm(binomial) y ~ fin*lp vs y ~ fin + lp",
    curve = "glm(y ~ fin*lp, binomial) at 61 equally spaced lp from min to max: RD = expit(x1'b) - expit(x0'b), RR = ratio, delta-method SEs (RR: SE of log RR)",
    spline = "bs(age, df = 4): one interior knot at the median of age (type-7 quantile), boundary knots = range; conditional effects at prio = mean(prio), native scale (ols RD with HC3; modified Poisson RR with HC0; logit OR)",
    stepp = "sort age; windows start at ranks 1, 1+step, ... (step = size - overlap) plus a last window ending at n; window = all rows with age in [age_(start), age_(start+size-1)]; duplicate ranges dropped; textbook 2x2 effects per window",
    ridge = "maximize loglik/n - 0.5 * sum(lambda * sd_j^2 * b_j^2) over interaction columns j (sd with denominator n) by Newton; CV: mean held-out binomial deviance over the same folds, lambda_min = argmin",
    c_for_benefit = "predicted benefit = expit(x0'b) - expit(x1'b); each arm sorted by it (stable); smaller arm's i-th (0-based) patient paired with the larger arm's patient of rank floor((i + 0.5) M / m); pair benefit = mean, observed = y_control - y_treated; Hmisc::rcorr.cens C index"
  ),
  cases = cases,
  spline = spline_case(),
  stepp = stepp_case(),
  ridge = ridge_case()
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = FALSE),
           out_file)
cat("wrote", out_file, "\n")
