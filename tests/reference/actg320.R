# Independent R reference numbers for hte_report.fit on the ACTG 320 trial, default strategy
# (one modifier at a time) with a STRATIFIED Cox model, checked by
# tests/test_reference_actg320.py.
#
# Regenerate from the repository root:
#     (data/actg320.csv: scikit-survival's sksurv/datasets/data/actg320.arff, @data rows
#      written unchanged as CSV with the @attribute names as header; see the actg320 section
#      of tests/reference/README.md)
#     Rscript tests/reference/actg320.R
#
# Reads  tests/reference/data/actg320.csv (1151 patients, 96 events, no missing values)
# Writes tests/reference/actg320.json
# Needs R >= 4.2 with survival (>= 3.0: score-test cox.zph) and jsonlite.
#
# The package call these numbers describe (the model of examples/actg320/plan.yaml):
#   d["ivdrug_ever"] = (d.ivdrug > 1).astype(int)
#   hr.fit("Surv(time, censor) ~ tx * (cd4 + age + C(sex) + C(ivdrug_ever) + karnof)"
#          " + strata(strat2)", d, treatment="tx", horizons=[300], rmst_tau=300,
#          display_cutpoints={"cd4": [50]})
#
# Coding: `censor` is the EVENT indicator (1 = AIDS-defining event or death). tx = 1 indinavir +
# ZDV + 3TC, 0 ZDV + 3TC. sex factor (reference "1" = male); ivdrug_ever = 1 if ivdrug is 2
# (current) or 3 (previous), else 0 (factor, reference "0"; ivdrug = 2 alone has 4 patients, 1
# of them in the control arm, censored at 221 days, which makes horizons = 300 fail for C(ivdrug):
# see the test); cd4, age, karnof linear. strata(strat2): randomization stratum, each its own
# baseline hazard.
# Fitting: coxph(ties = "efron", control = coxph.control(eps = 1e-14, iter.max = 200,
# toler.chol = 1e-15)), model-based vcov. z = qnorm(0.975).
#
# Quantities ("records"; ratio scales: estimate = ratio, std_error = SE of the log ratio,
# CI = exp(log est -/+ z se), statistic = log est / se; differences on their own scale):
#  1. One-at-a-time models M_m: coxph(Surv(time, censor) ~ tx * m + strata(strat2)), m in cd4,
#     age, sex, ivdrug_ever, karnof.
#     - HR per level of sex / ivdrug_ever: exp(b_tx + b_int_l), SE = sqrt(L V L').
#     - Conditional HR at the type-7 quartiles of cd4 (23, 74.5, 136.5), age (33, 38, 44) and
#       karnof (90, 90, 100: duplicates dropped, keeping the first name -> 90 "25th percentile",
#       100 "75th percentile"): exp(b_tx + v b_int).
#     - interaction_effects: ratio of HRs exp(b_int) per non-reference level / per unit.
#     - tests: Wald b_int' V^-1 b_int; LR 2 (loglik(M_m) - loglik(tx + m + strata(strat2))).
#     - SurvDiff at h = 300 (standardized): mean over the subgroup's patients of
#       S_i(h | tx = 1) - S_i(h | tx = 0), S_i(h) = exp(-H0_{s(i)}(h) exp(x_i b)), H0_s the
#       Breslow baseline cumulative hazard of stratum s (each patient in their own stratum):
#       sum over event times t_k <= h of stratum s of d_k / S0_k, risk sets within the stratum
#       (survfit ctype = 1). Subgroups: levels of sex / ivdrug_ever; cd4 < 50 / >= 50 (display
#       cutpoint); age and karnof quarters at the type-7 quantiles with duplicate breaks removed
#       (age 15, 33, 38, 44, 73; karnof 70, 90, 100 -> "Q1 [70, 90]", "Q2 [90, 100]";
#       cut(right = TRUE, include.lowest = TRUE)). Covariance: G V G' + sum_s g_s g_s' varhaz_s,
#       G = total derivative in b (H0_s recomputed at b), g_s = d/dH0_s, varhaz_s =
#       sum_{t_k <= h, stratum s} d_k / S0_k^2 (analytic; checked against central differences,
#       against survfit(fit, newdata, ctype = 1) for single rows and, for the point estimates of
#       the overall row, against the mean of survfit predictions for every patient).
#       Interaction effects: difference of survival differences (level - reference); equality
#       test: Wald of the K - 1 differences from the first level.
#     - Conditional SurvDiff at the cd4 / age / karnof quartiles: the same for one row in the
#       modal stratum (strat2 = 1, 712 of 1151 patients), i.e. at the package's reference
#       profile.
#     - RMSTDiff at tau = 300: summary(survfit(Surv ~ 1), rmean = 300)$table rmean and
#       se(rmean) per arm within each subgroup (Kaplan-Meier, NOT stratified); difference,
#       SE = sqrt(se1^2 + se0^2); differences of RMST differences; equality test with diagonal
#       covariance.
#     - ph_p_value of each subgroup: cox.zph(coxph(Surv ~ tx + strata(strat2), subset =
#       subgroup), transform = "km")$table["tx", "p"] (km transform pooled over strata, as
#       cox.zph does).
#  2. Overall (primary analysis) coxph(Surv ~ tx + strata(strat2)) on all 1151 patients:
#     HR exp(b_tx); SurvDiff at 300 standardized over all patients; RMSTDiff at 300 (KM, all
#     patients); ph_p_value from the same model.
#  3. Kaplan-Meier displays of the report (survfit(Surv ~ 1) per arm, unstratified): per panel
#     (all patients; each level of sex and ivdrug_ever) and arm n, events, median with 95% CI
#     (log; NA = not reached: every curve here stays above 0.5), survival at 300 days, and
#     numbers at risk / survival at the figure's ticks 0, 100, 200, 300 days
#     (summary(survfit, times = ...)).
#  4. cox.zph(fit, transform = "km") per term and GLOBAL of the primary model
#     ("ph_tests$primary" = res.meta["ph_tests"]) and of each one-at-a-time model
#     ("ph_tests$one_at_a_time" = res.meta["ph_tests_by_model"]; terms renamed to the package's
#     labels, C(m) for factors).

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
out_file <- file.path(ref_dir, "actg320.json")

Z <- qnorm(0.975)
CTL <- coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15)
H <- 300
TAU <- 300
KM_TIMES <- c(0, 100, 200, 300)

d <- read.csv(file.path(ref_dir, "data", "actg320.csv"), stringsAsFactors = FALSE)
stopifnot(nrow(d) == 1151, !anyNA(d), all(d$censor %in% 0:1), all(d$tx %in% 0:1))
d$ivdrug_ever <- factor(as.integer(d$ivdrug > 1), levels = c(0, 1))
d$sex <- factor(d$sex, levels = c(1, 2))
N <- nrow(d)
MODAL_STRATUM <- as.integer(names(which.max(table(d$strat2))))
stopifnot(MODAL_STRATUM == 1)

records <- list()
effects <- list()
tests <- list()
checks <- list()

ratio_vals <- function(theta, se) {
  list(estimate = exp(theta), std_error = se, conf_low = exp(theta - Z * se),
       conf_high = exp(theta + Z * se), statistic = theta / se,
       p_value = 2 * pnorm(-abs(theta / se)))
}
diff_vals <- function(est, se) {
  list(estimate = est, std_error = se, conf_low = est - Z * se, conf_high = est + Z * se,
       statistic = est / se, p_value = 2 * pnorm(-abs(est / se)))
}
add_record <- function(analysis, modifier, level, scale, method, vals, value = NA,
                       horizon = NA, counts = list(), ph = NA, mu = c(NA, NA)) {
  records[[length(records) + 1]] <<- c(
    list(analysis = analysis, modifier = modifier, level = level, value = value, scale = scale,
         method = method, horizon = horizon, mu_treated = mu[1], mu_control = mu[2]),
    vals, counts, list(ph_p_value = ph))
}
add_effect <- function(modifier, level, reference, scale, method, vals, horizon = NA) {
  effects[[length(effects) + 1]] <<- c(
    list(modifier = modifier, level = level, reference = reference, scale = scale,
         method = method, horizon = horizon), vals)
}
wald <- function(b, V) {
  W <- as.numeric(t(b) %*% solve(V, b))
  list(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}
add_test <- function(modifier, scale, test, res, horizon = NA) {
  tests[[length(tests) + 1]] <<- c(list(modifier = modifier, scale = scale, test = test,
                                        horizon = horizon), res)
}
check <- function(name, a, b, tol = 1e-8) {
  err <- max(abs(a - b) / pmax(abs(b), 1e-300))
  checks[[length(checks) + 1]] <<- list(check = name, max_rel_diff = err)
  if (!is.finite(err) || err > tol) stop(sprintf("check %s failed: %g", name, err))
}

counts_of <- function(rows) {
  r1 <- rows & d$tx == 1
  r0 <- rows & d$tx == 0
  list(n = sum(rows), n_treated = sum(r1), n_control = sum(r0),
       events_treated = sum(d$censor[r1]), events_control = sum(d$censor[r0]),
       exposure_treated = sum(d$time[r1]), exposure_control = sum(d$time[r0]))
}

# rhs without strata; every Cox model is stratified by strat2
cox <- function(rhs, data = d) {
  f <- as.formula(sprintf("Surv(time, censor) ~ %s + strata(strat2)", rhs))
  fit <- coxph(f, data = data, ties = "efron", control = CTL, x = TRUE)
  stopifnot(fit$iter < 200)
  fit$rhs <- rhs
  fit
}

# cox.zph p of the treatment in a stratified Cox model of the treatment alone within rows
ph_p <- function(rows) {
  fit <- cox("tx", d[rows, ])
  cox.zph(fit, transform = "km")$table["tx", "p"]
}

# ---------------------------------------------------------------- standardized survival
# Breslow pieces per stratum at h for coefficient vector b (X centred), risk sets within strata
breslow <- function(b, X, time, status, strat, h) {
  r <- as.vector(exp(X %*% b))
  S <- sort(unique(strat))
  H0 <- setNames(rep(0, length(S)), S)
  dH0 <- matrix(0, length(S), ncol(X), dimnames = list(S, NULL))
  vh <- H0
  for (s in S) {
    ins <- strat == s
    tk <- sort(unique(time[ins & status == 1 & time <= h]))
    for (t in tk) {
      at <- ins & time >= t
      dk <- sum(ins & time == t & status == 1)
      S0 <- sum(r[at]); S1 <- colSums(X[at, , drop = FALSE] * r[at])
      H0[s] <- H0[s] + dk / S0
      dH0[s, ] <- dH0[s, ] - dk * S1 / S0^2
      vh[s] <- vh[s] + dk / S0^2
    }
  }
  list(H0 = H0, dH0 = dH0, varhaz = vh)
}

fit_pieces <- function(fit) {
  list(X = sweep(fit$x, 2, fit$means), time = fit$y[, 1], status = fit$y[, 2],
       strat = as.character(d$strat2[as.integer(rownames(fit$x))]))
}

# Standardized survival differences: Z1, Z0 counterfactual rows (centred), st their strata,
# W = K x n averaging weights. Returns estimates, covariance, means per arm.
std_surv <- function(fit, Z1, Z0, st, W) {
  b <- coef(fit); V <- vcov(fit)
  fp <- fit_pieces(fit)
  stopifnot(nrow(fp$X) == N)
  bz <- breslow(b, fp$X, fp$time, fp$status, fp$strat, H)
  st <- as.character(st)
  E <- outer(st, names(bz$H0), "==") * 1  # n x S stratum indicators
  surv_parts <- function(Zm) {
    e <- as.vector(exp(Zm %*% b))
    h0 <- bz$H0[st]
    S <- exp(-h0 * e)
    list(S = S, db = -(S * e) * (bz$dH0[st, , drop = FALSE] + h0 * Zm), dH = -(S * e) * E)
  }
  p1 <- surv_parts(Z1); p0 <- surv_parts(Z0)
  mu1 <- as.vector(W %*% p1$S); mu0 <- as.vector(W %*% p0$S)
  G <- W %*% (p1$db - p0$db)
  g <- W %*% (p1$dH - p0$dH)  # K x S
  cov <- G %*% V %*% t(G) + g %*% diag(bz$varhaz, length(bz$varhaz)) %*% t(g)
  est_at <- function(bb) {
    h0 <- breslow(bb, fp$X, fp$time, fp$status, fp$strat, H)$H0[st]
    as.vector(W %*% (exp(-h0 * exp(Z1 %*% bb)) - exp(-h0 * exp(Z0 %*% bb))))
  }
  num <- sapply(seq_along(b), function(j) {
    e <- rep(0, length(b)); e[j] <- 1e-5 * max(1, abs(b[j]))
    (est_at(b + e) - est_at(b - e)) / (2 * e[j])
  })
  check(paste("gradient", fit$rhs, nrow(W)), as.vector(num), as.vector(G), tol = 1e-5)
  list(est = mu1 - mu0, cov = cov, mu1 = mu1, mu0 = mu0, breslow = bz)
}

# centred counterfactual design rows of the fit for a data frame nd, tx set to a
cf_rows <- function(fit, nd, a) {
  nd$tx <- a
  M <- model.matrix(as.formula(paste("~", fit$rhs)), nd,
                    xlev = fit$xlevels[names(fit$xlevels) != "strata(strat2)"])[, -1, drop = FALSE]
  stopifnot(identical(colnames(M), names(coef(fit))))
  sweep(M, 2, fit$means)
}

# single-row check against survfit(ctype = 1): survival and SE of the cumulative hazard
check_survfit <- function(fit, nd, label) {
  z <- cf_rows(fit, nd, nd$tx)
  b <- coef(fit); V <- vcov(fit)
  fp <- fit_pieces(fit)
  bz <- breslow(b, fp$X, fp$time, fp$status, fp$strat, H)
  s <- as.character(nd$strat2)
  e <- as.numeric(exp(z %*% b))
  dH <- e * (bz$dH0[s, ] + bz$H0[[s]] * as.vector(z))
  seH <- sqrt(as.numeric(t(dH) %*% V %*% dH) + e^2 * bz$varhaz[[s]])
  sf <- survfit(fit, newdata = nd, ctype = 1, se.fit = TRUE, conf.type = "none")
  k <- max(which(sf$time <= H))
  check(paste("survfit surv", label), exp(-bz$H0[[s]] * e), sf$surv[k], 1e-10)
  check(paste("survfit std.err", label), seH, sf$std.err[k], 1e-8)
}

rmst_of <- function(rows) {
  out <- sapply(c(1, 0), function(a) {
    sub <- d[rows & d$tx == a, ]
    tab <- summary(survfit(Surv(time, censor) ~ 1, data = sub), rmean = TAU)$table
    c(tab[["rmean"]], tab[["se(rmean)"]])
  })
  list(mu1 = out[1, 1], mu0 = out[1, 2], est = out[1, 1] - out[1, 2],
       se = sqrt(out[2, 1]^2 + out[2, 2]^2))
}

# ---------------------------------------------------------------- subgroups per modifier
quarters <- function(x) {
  br <- unique(quantile(x, c(0, .25, .5, .75, 1), type = 7))
  bin <- cut(x, br, right = TRUE, include.lowest = TRUE)
  lab <- sprintf("Q%d [%g, %g]", seq_len(length(br) - 1), br[-length(br)], br[-1])
  list(breaks = as.numeric(br),
       rows = setNames(lapply(seq_along(lab), function(i) as.integer(bin) == i), lab))
}
q_age <- quarters(d$age)
q_karnof <- quarters(d$karnof)
subgroups <- list(
  cd4 = list("< 50" = d$cd4 < 50, ">= 50" = d$cd4 >= 50),
  age = q_age$rows,
  sex = list("1" = d$sex == "1", "2" = d$sex == "2"),
  ivdrug_ever = list("0" = d$ivdrug_ever == "0", "1" = d$ivdrug_ever == "1"),
  karnof = q_karnof$rows
)
categorical <- c("sex", "ivdrug_ever")
q_names <- c("25th percentile", "median", "75th percentile")
cond_at <- lapply(list(cd4 = d$cd4, age = d$age, karnof = d$karnof), function(x) {
  q <- as.numeric(quantile(x, c(.25, .5, .75), type = 7))
  keep <- !duplicated(q)
  list(values = q[keep], labels = sprintf("at %g (%s)", q[keep], q_names[keep]))
})
zph_one <- list()

for (m in c("cd4", "age", "sex", "ivdrug_ever", "karnof")) {
  fit <- cox(sprintf("tx * %s", m))
  red <- cox(sprintf("tx + %s", m))
  b <- coef(fit); V <- vcov(fit)
  int <- grep("^tx:", names(b))
  add_test(m, "HR", "wald", wald(b[int], V[int, int, drop = FALSE]))
  lr <- 2 * (fit$loglik[2] - red$loglik[2])
  add_test(m, "HR", "lr", list(statistic = lr, df = length(int),
                               p_value = pchisq(lr, length(int), lower.tail = FALSE)))
  it <- which(names(b) == "tx")
  if (m %in% categorical) {
    lev <- levels(d[[m]])
    for (i in seq_along(lev)) {
      L <- rep(0, length(b)); L[it] <- 1
      if (i > 1) L[which(names(b) == paste0("tx:", m, lev[i]))] <- 1
      th <- sum(L * b); se <- sqrt(as.numeric(t(L) %*% V %*% L))
      rows <- subgroups[[m]][[lev[i]]]
      add_record("one-at-a-time", m, lev[i], "HR", "conditional", ratio_vals(th, se),
                 counts = counts_of(rows), ph = ph_p(rows))
      if (i > 1) {
        j <- which(names(b) == paste0("tx:", m, lev[i]))
        add_effect(m, lev[i], lev[1], "ratio of HRs", "conditional",
                   ratio_vals(b[[j]], sqrt(V[j, j])))
      }
    }
    # second route: refit with the other level as reference, HR = exp(b_tx)
    for (l in lev[-1]) {
      d2 <- d; d2[[m]] <- relevel(d2[[m]], ref = l)
      f2 <- cox(sprintf("tx * %s", m), d2)
      rec <- Filter(function(r) r$modifier == m && r$level == l && r$scale == "HR", records)[[1]]
      check(paste("relevel", m, l), c(exp(coef(f2)[["tx"]]), sqrt(vcov(f2)["tx", "tx"])),
            c(rec$estimate, rec$std_error), 1e-8)
    }
  } else {
    j <- which(names(b) == paste0("tx:", m))
    add_effect(m, "per unit", "", "ratio of HRs", "coefficient",
               ratio_vals(b[[j]], sqrt(V[j, j])))
    vals <- cond_at[[m]]$values; labs <- cond_at[[m]]$labels
    for (i in seq_along(vals)) {
      L <- rep(0, length(b)); L[it] <- 1; L[j] <- vals[i]
      add_record("one-at-a-time", m, labs[i], "HR", "conditional",
                 ratio_vals(sum(L * b), sqrt(as.numeric(t(L) %*% V %*% L))), value = vals[i])
    }
    # conditional SurvDiff at the profile: the modal stratum
    nd <- data.frame(tx = 0, strat2 = rep(MODAL_STRATUM, length(vals)))
    nd[[m]] <- vals
    sd <- std_surv(fit, cf_rows(fit, nd, 1), cf_rows(fit, nd, 0), nd$strat2, diag(length(vals)))
    for (i in seq_along(vals)) {
      add_record("one-at-a-time", m, labs[i], "SurvDiff", "conditional",
                 diff_vals(sd$est[i], sqrt(sd$cov[i, i])), value = vals[i], horizon = H,
                 mu = c(sd$mu1[i], sd$mu0[i]))
    }
    check_survfit(fit, nd[1, , drop = FALSE], m)
    nd0 <- nd[1, , drop = FALSE]; nd0$strat2 <- 0
    check_survfit(fit, nd0, paste(m, "stratum 0"))
  }
  # standardized SurvDiff and KM RMSTDiff per subgroup
  sg <- subgroups[[m]]
  W <- t(sapply(sg, function(r) r / sum(r)))
  sd <- std_surv(fit, cf_rows(fit, d, 1), cf_rows(fit, d, 0), d$strat2, W)
  rm <- lapply(sg, rmst_of)
  for (i in seq_along(sg)) {
    rows <- sg[[i]]
    cnt <- counts_of(rows); ph <- ph_p(rows)
    add_record("one-at-a-time", m, names(sg)[i], "SurvDiff", "standardized",
               diff_vals(sd$est[i], sqrt(sd$cov[i, i])), horizon = H, counts = cnt, ph = ph,
               mu = c(sd$mu1[i], sd$mu0[i]))
    add_record("one-at-a-time", m, names(sg)[i], "RMSTDiff", "km",
               diff_vals(rm[[i]]$est, rm[[i]]$se), horizon = TAU, counts = cnt, ph = ph,
               mu = c(rm[[i]]$mu1, rm[[i]]$mu0))
  }
  if (m %in% categorical) {
    K <- length(sg)
    C <- cbind(-1, diag(K - 1))
    add_test(m, "SurvDiff", "equality", wald(C %*% sd$est, C %*% sd$cov %*% t(C)), H)
    rm_est <- sapply(rm, `[[`, "est"); rm_se <- sapply(rm, `[[`, "se")
    add_test(m, "RMSTDiff", "equality", wald(C %*% rm_est, C %*% diag(rm_se^2) %*% t(C)), TAU)
    for (i in 2:K) {
      Li <- rep(0, K); Li[1] <- -1; Li[i] <- 1
      add_effect(m, names(sg)[i], names(sg)[1], "difference of survival differences",
                 "standardized", diff_vals(sum(Li * sd$est),
                                           sqrt(as.numeric(t(Li) %*% sd$cov %*% Li))), H)
      add_effect(m, names(sg)[i], names(sg)[1], "difference of RMST differences", "km",
                 diff_vals(rm_est[i] - rm_est[1], sqrt(rm_se[i]^2 + rm_se[1]^2)))
    }
  }
  # cox.zph per term of the one-at-a-time model (the strata term is not tested)
  zt <- cox.zph(fit, transform = "km")$table
  pkg <- rownames(zt)
  if (m %in% categorical) pkg <- gsub(paste0("\\b", m, "\\b"), sprintf("C(%s)", m), pkg)
  zph_one[[m]] <- lapply(seq_len(nrow(zt)), function(i)
    list(term = pkg[i], r_term = rownames(zt)[i], statistic = zt[i, "chisq"], df = zt[i, "df"],
         p_value = zt[i, "p"]))
}

# ---------------------------------------------------------------- overall (primary analysis)
prim <- cox("tx")
all_rows <- rep(TRUE, N)
cnt <- counts_of(all_rows); ph_all <- ph_p(all_rows)
add_record("overall-adjusted", "All patients", "", "HR", "main-effects",
           ratio_vals(coef(prim)[["tx"]], sqrt(vcov(prim)["tx", "tx"])),
           counts = cnt, ph = ph_all)
sd <- std_surv(prim, cf_rows(prim, d, 1), cf_rows(prim, d, 0), d$strat2, matrix(1 / N, 1, N))
add_record("overall-adjusted", "All patients", "", "SurvDiff", "standardized",
           diff_vals(sd$est, sqrt(sd$cov[1, 1])), horizon = H, counts = cnt, ph = ph_all,
           mu = c(sd$mu1, sd$mu0))
for (s in 0:1) check_survfit(prim, data.frame(tx = 1, strat2 = s), paste("primary stratum", s))
# second route for the standardized means: survfit predictions for every patient in their own
# stratum (one curve per newdata row), averaged
sf_mean <- function(a) {
  nd <- d; nd$tx <- a
  sf <- survfit(prim, newdata = nd, ctype = 1, se.fit = FALSE)
  mean(summary(sf, times = H)$surv)
}
check("survfit standardized mu_treated", sf_mean(1), sd$mu1, 1e-10)
check("survfit standardized mu_control", sf_mean(0), sd$mu0, 1e-10)
rm <- rmst_of(all_rows)
add_record("overall-adjusted", "All patients", "", "RMSTDiff", "km", diff_vals(rm$est, rm$se),
           horizon = TAU, counts = cnt, ph = ph_all, mu = c(rm$mu1, rm$mu0))
zt <- cox.zph(prim, transform = "km")$table
zph_primary <- lapply(seq_len(nrow(zt)), function(i)
  list(term = rownames(zt)[i], r_term = rownames(zt)[i], statistic = zt[i, "chisq"],
       df = zt[i, "df"], p_value = zt[i, "p"]))

# ---------------------------------------------------------------- Kaplan-Meier displays
medians <- list()
at_risk <- list()
km_groups <- c(list(list(modifier = "All patients", level = "", rows = all_rows)),
               unlist(lapply(categorical, function(m) lapply(names(subgroups[[m]]), function(l)
                 list(modifier = m, level = l, rows = subgroups[[m]][[l]]))), recursive = FALSE))
na_num <- function(x) if (is.na(x)) NA_real_ else as.numeric(x)
for (g in km_groups) {
  for (a in c(1, 0)) {
    sub <- d[g$rows & d$tx == a, ]
    sf <- survfit(Surv(time, censor) ~ 1, data = sub)
    tab <- summary(sf)$table
    s300 <- summary(sf, times = H)
    medians[[length(medians) + 1]] <- list(
      modifier = g$modifier, level = g$level, arm = a,
      n = nrow(sub), events = sum(sub$censor), median = na_num(tab[["median"]]),
      median_lcl = na_num(tab[["0.95LCL"]]), median_ucl = na_num(tab[["0.95UCL"]]),
      surv_at_horizon = s300$surv, min_surv = min(sf$surv))
    s <- summary(sf, times = KM_TIMES, extend = TRUE)
    for (i in seq_along(KM_TIMES)) {
      stopifnot(s$n.risk[i] == sum(sub$time >= KM_TIMES[i]))
      at_risk[[length(at_risk) + 1]] <- list(modifier = g$modifier, level = g$level, arm = a,
                                             time = KM_TIMES[i], n_risk = s$n.risk[i],
                                             surv = s$surv[i])
    }
  }
}

out <- list(
  generated_by = sprintf("tests/reference/actg320.R; %s; survival %s", R.version.string,
                         as.character(packageVersion("survival"))),
  call = paste0("d['ivdrug_ever'] = (d.ivdrug > 1).astype(int); hr.fit('Surv(time, censor) ~ ",
                "tx * (cd4 + age + C(sex) + C(ivdrug_ever) + karnof) + strata(strat2)', d, ",
                "treatment='tx', horizons=[300], rmst_tau=300, display_cutpoints={'cd4': [50]})"),
  definitions = "See the header of tests/reference/actg320.R (quantities 1-4).",
  n = N, events = sum(d$censor), horizon = H, tau = TAU, modal_stratum = MODAL_STRATUM,
  age_breaks = q_age$breaks, karnof_breaks = q_karnof$breaks, km_times = KM_TIMES,
  records = records, interaction_effects = effects, tests = tests,
  ph_tests = list(primary = zph_primary, one_at_a_time = zph_one),
  km = list(panels = medians, at_risk = at_risk),
  checks = checks)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), out_file)
cat(sprintf("wrote %s: %d records, %d interaction effects, %d tests, %d checks\n", out_file,
            length(records), length(effects), length(tests), length(checks)))
