# Independent R reference numbers for hte_report.fit on the GBSG2 trial, default strategy
# (one modifier at a time), checked by tests/test_reference_gbsg2.py.
#
# Regenerate from the repository root:
#     python3 -c "from lifelines.datasets import load_gbsg2; \
#         load_gbsg2().to_csv('tests/reference/data/gbsg2.csv', index=False)"
#     Rscript tests/reference/gbsg2.R
#
# Reads  tests/reference/data/gbsg2.csv (686 patients; see data/README.md)
# Writes tests/reference/gbsg2.json
# Needs R >= 4.2 with survival (>= 3.0: score-test cox.zph) and jsonlite.
#
# The package call these numbers describe:
#   hr.fit("Surv(time, cens) ~ horTh * (age + C(menostat) + C(tgrade) + pnodes) + progrec", d,
#          treatment="horTh", reference="no", horizons=[1095], rmst_tau=1825,
#          display_cutpoints={"age": [50]}, at={"age": [40, 50, 60]})
#
# Coding: trt = 1 for horTh "yes", 0 for "no"; menostat factor (reference "Post"), tgrade
# factor (reference "I"); age, pnodes, progrec linear. No missing values (n = 686, 299 events).
# Fitting: coxph(ties = "efron", control = coxph.control(eps = 1e-14, iter.max = 200,
# toler.chol = 1e-15)), model-based vcov. z = qnorm(0.975).
#
# Quantities ("records"; ratio scales: estimate = ratio, std_error = SE of the log ratio,
# CI = exp(log est -/+ z se), statistic = log est / se; differences on their own scale):
#  1. One-at-a-time models M_m: coxph(Surv(time, cens) ~ trt * m + progrec), m in age, menostat,
#     tgrade, pnodes.
#     - HR per level of menostat / tgrade: exp(b_trt + b_int_l) (reference level: exp(b_trt)),
#       SE = sqrt(L V L') (method "conditional": with no other interactions it does not depend
#       on the profile).
#     - Conditional HR at age 40/50/60 (the at= values) and at the type-7 quartiles of pnodes
#       (1, 3, 7; quantile(pnodes, c(.25, .5, .75))): exp(b_trt + v b_int).
#     - interaction_effects: ratio of HRs exp(b_int_l) per non-reference level; per unit of age
#       and pnodes exp(b_int) (SE from V).
#     - tests: Wald b_int' V^-1 b_int; LR 2 (loglik(M_m) - loglik(trt + m + progrec)).
#     - SurvDiff at h = 1095 (standardized, method "standardized"): mean over the subgroup's
#       patients of S_i(h | trt = 1) - S_i(h | trt = 0), S_i(h) = exp(-H0(h) exp(x_i b)), H0 the
#       Breslow (Aalen-type) baseline cumulative hazard sum_{t_k <= h} d_k / S0_k (survfit
#       ctype = 1) of M_m. Subgroups: the levels of menostat / tgrade; age < 50 / >= 50 (the
#       display cutpoint); pnodes quarters at the type-7 quantiles (0, .25, .5, .75, 1) with
#       duplicate breaks removed (1, 3, 7, 51: "Q1 [1, 3]", "Q2 [3, 7]", "Q3 [7, 51]";
#       cut(right = TRUE, include.lowest = TRUE)). Covariance of the subgroup differences:
#       G V G' + g g' varhaz, G = total derivative in b (H0 recomputed at b), g = d/dH0,
#       varhaz = sum_{t_k <= h} d_k / S0_k^2 (analytic; checked against central differences and,
#       for single rows, against survfit(fit, newdata, ctype = 1)).
#       Interaction effects: difference of survival differences (level - reference); equality
#       test: Wald of the K - 1 differences from the first level.
#     - Conditional SurvDiff at age 40/50/60 and pnodes 1/3/7: the same at the profile row
#       (progrec at its mean).
#     - RMSTDiff at tau = 1825: summary(survfit(Surv ~ 1), rmean = 1825)$table rmean and
#       se(rmean) (Kaplan-Meier, Greenwood-type se) per arm within each subgroup; difference,
#       SE = sqrt(se1^2 + se0^2); interaction effects: difference of RMST differences
#       (independent subgroups, variances add); equality test: Wald of the K - 1 differences
#       (diagonal covariance).
#     - ph_p_value of each subgroup: cox.zph(coxph(Surv ~ trt, subset = subgroup),
#       transform = "km")$table["trt", "p"].
#  2. Overall (primary analysis) coxph(Surv ~ trt + progrec) on all 686 patients: HR exp(b_trt);
#     SurvDiff at 1095 standardized over all patients (as in 1.); RMSTDiff at 1825 (all
#     patients); ph_p_value from coxph(Surv ~ trt).
#  3. Kaplan-Meier (survfit(Surv ~ 1) per arm, log CI): median survival and its 95% CI (NA when
#     not reached) overall and within each level of menostat and tgrade; numbers at risk and
#     survival at 0, 365, 730, 1095, 1460, 1825 days per arm overall
#     (summary(survfit, times = ...)).
#  4. cox.zph(fit, transform = "km") per term and GLOBAL of the primary model ("ph_tests$primary",
#     what res.meta["ph_tests"] reports) and of each one-at-a-time model
#     ("ph_tests$one_at_a_time"; terms renamed to the package's labels, C(m) for factors).

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
out_file <- file.path(ref_dir, "gbsg2.json")

Z <- qnorm(0.975)
CTL <- coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15)
H <- 1095
TAU <- 1825
AT_AGE <- c(40, 50, 60)
KM_TIMES <- c(0, 365, 730, 1095, 1460, 1825)

d <- read.csv(file.path(ref_dir, "data", "gbsg2.csv"), stringsAsFactors = FALSE)
stopifnot(nrow(d) == 686, !anyNA(d))
d$horTh <- as.integer(d$horTh == "yes")
d$menostat <- factor(d$menostat, levels = c("Post", "Pre"))
d$tgrade <- factor(d$tgrade, levels = c("I", "II", "III"))
N <- nrow(d)

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
  r1 <- rows & d$horTh == 1
  r0 <- rows & d$horTh == 0
  list(n = sum(rows), n_treated = sum(r1), n_control = sum(r0),
       events_treated = sum(d$cens[r1]), events_control = sum(d$cens[r0]),
       exposure_treated = sum(d$time[r1]), exposure_control = sum(d$time[r0]))
}

cox <- function(f, data = d) {
  fit <- coxph(f, data = data, ties = "efron", control = CTL, x = TRUE)
  stopifnot(fit$iter < 200)
  fit
}

# cox.zph p of the treatment in a Cox model of the treatment alone within rows
ph_p <- function(rows) {
  sub <- d[rows, ]
  fit <- coxph(Surv(time, cens) ~ horTh, data = sub, ties = "efron", control = CTL)
  cox.zph(fit, transform = "km")$table["horTh", "p"]
}

# ---------------------------------------------------------------- standardized survival
# Breslow pieces at h for coefficient vector b (X centred at the fit's means)
breslow <- function(b, X, time, status, h) {
  r <- as.vector(exp(X %*% b))
  tk <- sort(unique(time[status == 1 & time <= h]))
  H0 <- 0; dH0 <- rep(0, ncol(X)); vh <- 0
  for (t in tk) {
    at <- time >= t
    dk <- sum(time == t & status == 1)
    S0 <- sum(r[at]); S1 <- colSums(X[at, , drop = FALSE] * r[at])
    H0 <- H0 + dk / S0
    dH0 <- dH0 - dk * S1 / S0^2
    vh <- vh + dk / S0^2
  }
  list(H0 = H0, dH0 = dH0, varhaz = vh)
}

# Standardized survival differences: Z1, Z0 counterfactual rows (centred), W = K x n averaging
# weights. Returns estimates, covariance, means per arm.
std_surv <- function(fit, Z1, Z0, W) {
  b <- coef(fit); V <- vcov(fit)
  X <- sweep(fit$x, 2, fit$means)
  time <- fit$y[, 1]; status <- fit$y[, 2]
  bz <- breslow(b, X, time, status, H)
  surv_parts <- function(Zm) {
    e <- as.vector(exp(Zm %*% b))
    S <- exp(-bz$H0 * e)
    list(S = S, db = -(S * e) * (matrix(bz$dH0, nrow(Zm), length(b), byrow = TRUE) + bz$H0 * Zm),
         dH = -S * e)
  }
  p1 <- surv_parts(Z1); p0 <- surv_parts(Z0)
  mu1 <- as.vector(W %*% p1$S); mu0 <- as.vector(W %*% p0$S)
  G <- W %*% (p1$db - p0$db)
  g <- as.vector(W %*% (p1$dH - p0$dH))
  cov <- G %*% V %*% t(G) + outer(g, g) * bz$varhaz
  # check the analytic total derivative in b by central differences (H0 recomputed at b)
  est_at <- function(bb) {
    h0 <- breslow(bb, X, time, status, H)$H0
    as.vector(W %*% (exp(-h0 * exp(Z1 %*% bb)) - exp(-h0 * exp(Z0 %*% bb))))
  }
  num <- sapply(seq_along(b), function(j) {
    e <- rep(0, length(b)); e[j] <- 1e-5 * max(1, abs(b[j]))
    (est_at(b + e) - est_at(b - e)) / (2 * e[j])
  })
  check(paste("gradient", deparse(formula(fit))[1]), as.vector(num), as.vector(G), tol = 1e-5)
  list(est = mu1 - mu0, cov = cov, mu1 = mu1, mu0 = mu0, breslow = bz)
}

# centred counterfactual design rows of the fit for a data frame nd, trt set to a
cf_rows <- function(fit, nd, a) {
  nd$horTh <- a
  tt <- delete.response(terms(fit))
  M <- model.matrix(tt, model.frame(tt, nd, xlev = fit$xlevels))[, -1, drop = FALSE]
  stopifnot(identical(colnames(M), names(coef(fit))))
  sweep(M, 2, fit$means)
}

# single-row check against survfit(ctype = 1): survival and SE of the cumulative hazard
check_survfit <- function(fit, nd, label) {
  z <- cf_rows(fit, nd, nd$horTh)
  b <- coef(fit); V <- vcov(fit)
  bz <- breslow(b, sweep(fit$x, 2, fit$means), fit$y[, 1], fit$y[, 2], H)
  e <- as.numeric(exp(z %*% b))
  dH <- e * (bz$dH0 + bz$H0 * as.vector(z))
  seH <- sqrt(as.numeric(t(dH) %*% V %*% dH) + e^2 * bz$varhaz)
  sf <- survfit(fit, newdata = nd, ctype = 1, se.fit = TRUE, conf.type = "none")
  k <- max(which(sf$time <= H))
  check(paste("survfit surv", label), exp(-bz$H0 * e), sf$surv[k], 1e-10)
  check(paste("survfit std.err", label), seH, sf$std.err[k], 1e-8)
}

rmst_of <- function(rows) {
  out <- sapply(c(1, 0), function(a) {
    sub <- d[rows & d$horTh == a, ]
    tab <- summary(survfit(Surv(time, cens) ~ 1, data = sub), rmean = TAU)$table
    c(tab[["rmean"]], tab[["se(rmean)"]])
  })
  list(mu1 = out[1, 1], mu0 = out[1, 2], est = out[1, 1] - out[1, 2],
       se = sqrt(out[2, 1]^2 + out[2, 2]^2))
}

# ---------------------------------------------------------------- subgroups per modifier
q_pn <- quantile(d$pnodes, c(0, .25, .5, .75, 1), type = 7)
br_pn <- unique(q_pn)
pn_bin <- cut(d$pnodes, br_pn, right = TRUE, include.lowest = TRUE)
pn_labels <- sprintf("Q%d [%g, %g]", seq_len(length(br_pn) - 1), br_pn[-length(br_pn)], br_pn[-1])
subgroups <- list(
  menostat = lapply(setNames(levels(d$menostat), levels(d$menostat)), function(l) d$menostat == l),
  tgrade = lapply(setNames(levels(d$tgrade), levels(d$tgrade)), function(l) d$tgrade == l),
  age = list("< 50" = d$age < 50, ">= 50" = d$age >= 50),
  pnodes = setNames(lapply(seq_along(pn_labels), function(i) as.integer(pn_bin) == i), pn_labels)
)
categorical <- c("menostat", "tgrade")
cond_at <- list(age = AT_AGE, pnodes = as.numeric(q_pn[2:4]))
pn_names <- c("25th percentile", "median", "75th percentile")
progrec_mean <- mean(d$progrec)
zph_one <- list()

for (m in c("age", "menostat", "tgrade", "pnodes")) {
  f_full <- as.formula(sprintf("Surv(time, cens) ~ horTh * %s + progrec", m))
  f_red <- as.formula(sprintf("Surv(time, cens) ~ horTh + %s + progrec", m))
  fit <- cox(f_full)
  red <- cox(f_red)
  b <- coef(fit); V <- vcov(fit)
  int <- grep("^horTh:", names(b))
  tests_m <- wald(b[int], V[int, int, drop = FALSE])
  add_test(m, "HR", "wald", tests_m)
  lr <- 2 * (fit$loglik[2] - red$loglik[2])
  add_test(m, "HR", "lr", list(statistic = lr, df = length(int),
                               p_value = pchisq(lr, length(int), lower.tail = FALSE)))
  it <- which(names(b) == "horTh")
  if (m %in% categorical) {
    lev <- levels(d[[m]])
    for (i in seq_along(lev)) {
      L <- rep(0, length(b)); L[it] <- 1
      if (i > 1) L[which(names(b) == paste0("horTh:", m, lev[i]))] <- 1
      th <- sum(L * b); se <- sqrt(as.numeric(t(L) %*% V %*% L))
      rows <- subgroups[[m]][[lev[i]]]
      add_record("one-at-a-time", m, lev[i], "HR", "conditional", ratio_vals(th, se),
                 counts = counts_of(rows), ph = ph_p(rows))
      if (i > 1) {
        j <- which(names(b) == paste0("horTh:", m, lev[i]))
        add_effect(m, lev[i], lev[1], "ratio of HRs", "conditional",
                   ratio_vals(b[[j]], sqrt(V[j, j])))
      }
    }
    # second route: refit with the level as reference, HR = exp(b_trt)
    for (l in lev[-1]) {
      d2 <- d; d2[[m]] <- relevel(d2[[m]], ref = l)
      f2 <- cox(f_full, d2)
      rec <- Filter(function(r) r$modifier == m && r$level == l && r$scale == "HR", records)[[1]]
      check(paste("relevel", m, l), c(exp(coef(f2)[["horTh"]]), sqrt(vcov(f2)["horTh", "horTh"])),
            c(rec$estimate, rec$std_error), 1e-8)
    }
  } else {
    j <- which(names(b) == paste0("horTh:", m))
    add_effect(m, "per unit", "", "ratio of HRs", "coefficient",
               ratio_vals(b[[j]], sqrt(V[j, j])))
    vals <- cond_at[[m]]
    for (i in seq_along(vals)) {
      L <- rep(0, length(b)); L[it] <- 1; L[j] <- vals[i]
      lab <- if (m == "pnodes") sprintf("at %g (%s)", vals[i], pn_names[i]) else sprintf("at %g", vals[i])
      add_record("one-at-a-time", m, lab, "HR", "conditional",
                 ratio_vals(sum(L * b), sqrt(as.numeric(t(L) %*% V %*% L))), value = vals[i])
    }
    # conditional SurvDiff at the profile (progrec at its mean)
    nd <- data.frame(horTh = 0, progrec = progrec_mean)
    nd <- nd[rep(1, length(vals)), ]
    nd[[m]] <- vals
    sd <- std_surv(fit, cf_rows(fit, nd, 1), cf_rows(fit, nd, 0), diag(length(vals)))
    for (i in seq_along(vals)) {
      lab <- if (m == "pnodes") sprintf("at %g (%s)", vals[i], pn_names[i]) else sprintf("at %g", vals[i])
      add_record("one-at-a-time", m, lab, "SurvDiff", "conditional",
                 diff_vals(sd$est[i], sqrt(sd$cov[i, i])), value = vals[i], horizon = H,
                 mu = c(sd$mu1[i], sd$mu0[i]))
    }
    check_survfit(fit, nd[1, , drop = FALSE], m)
  }
  # standardized SurvDiff and KM RMSTDiff per subgroup
  sg <- subgroups[[m]]
  W <- t(sapply(sg, function(r) r / sum(r)))
  sd <- std_surv(fit, cf_rows(fit, d, 1), cf_rows(fit, d, 0), W)
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
  # cox.zph per term of the one-at-a-time model
  zt <- cox.zph(fit, transform = "km")$table
  pkg <- rownames(zt)
  if (m %in% categorical) pkg <- gsub(paste0("\\b", m, "\\b"), sprintf("C(%s)", m), pkg)
  zph_one[[m]] <- lapply(seq_len(nrow(zt)), function(i)
    list(term = pkg[i], r_term = rownames(zt)[i], statistic = zt[i, "chisq"], df = zt[i, "df"],
         p_value = zt[i, "p"]))
}

# ---------------------------------------------------------------- overall (primary analysis)
prim <- cox(Surv(time, cens) ~ horTh + progrec)
all_rows <- rep(TRUE, N)
cnt <- counts_of(all_rows); ph_all <- ph_p(all_rows)
add_record("overall-adjusted", "All patients", "", "HR", "main-effects",
           ratio_vals(coef(prim)[["horTh"]], sqrt(vcov(prim)["horTh", "horTh"])),
           counts = cnt, ph = ph_all)
sd <- std_surv(prim, cf_rows(prim, d, 1), cf_rows(prim, d, 0), matrix(1 / N, 1, N))
add_record("overall-adjusted", "All patients", "", "SurvDiff", "standardized",
           diff_vals(sd$est, sqrt(sd$cov[1, 1])), horizon = H, counts = cnt, ph = ph_all,
           mu = c(sd$mu1, sd$mu0))
check_survfit(prim, data.frame(horTh = 1, progrec = progrec_mean), "primary")
rm <- rmst_of(all_rows)
add_record("overall-adjusted", "All patients", "", "RMSTDiff", "km", diff_vals(rm$est, rm$se),
           horizon = TAU, counts = cnt, ph = ph_all, mu = c(rm$mu1, rm$mu0))
zt <- cox.zph(prim, transform = "km")$table
zph_primary <- lapply(seq_len(nrow(zt)), function(i)
  list(term = rownames(zt)[i], r_term = rownames(zt)[i], statistic = zt[i, "chisq"],
       df = zt[i, "df"], p_value = zt[i, "p"]))

# ---------------------------------------------------------------- Kaplan-Meier displays
arm_name <- c("1" = "yes", "0" = "no")
medians <- list()
km_groups <- c(list(list(modifier = "All patients", level = "", rows = all_rows)),
               unlist(lapply(categorical, function(m) lapply(names(subgroups[[m]]), function(l)
                 list(modifier = m, level = l, rows = subgroups[[m]][[l]]))), recursive = FALSE))
na_num <- function(x) if (is.na(x)) NA_real_ else as.numeric(x)
for (g in km_groups) {
  for (a in c(1, 0)) {
    sub <- d[g$rows & d$horTh == a, ]
    tab <- summary(survfit(Surv(time, cens) ~ 1, data = sub))$table
    medians[[length(medians) + 1]] <- list(
      modifier = g$modifier, level = g$level, arm = arm_name[[as.character(a)]],
      n = nrow(sub), events = sum(sub$cens), median = na_num(tab[["median"]]),
      median_lcl = na_num(tab[["0.95LCL"]]), median_ucl = na_num(tab[["0.95UCL"]]))
  }
}
at_risk <- list()
for (a in c(1, 0)) {
  sub <- d[d$horTh == a, ]
  s <- summary(survfit(Surv(time, cens) ~ 1, data = sub), times = KM_TIMES, extend = TRUE)
  for (i in seq_along(KM_TIMES)) {
    stopifnot(s$n.risk[i] == sum(sub$time >= KM_TIMES[i]))
    at_risk[[length(at_risk) + 1]] <- list(arm = arm_name[[as.character(a)]], time = KM_TIMES[i],
                                           n_risk = s$n.risk[i], surv = s$surv[i])
  }
}

out <- list(
  generated_by = sprintf("tests/reference/gbsg2.R; %s; survival %s", R.version.string,
                         as.character(packageVersion("survival"))),
  call = paste0("hr.fit('Surv(time, cens) ~ horTh * (age + C(menostat) + C(tgrade) + pnodes) ",
                "+ progrec', d, treatment='horTh', reference='no', horizons=[1095], ",
                "rmst_tau=1825, display_cutpoints={'age': [50]}, at={'age': [40, 50, 60]})"),
  definitions = "See the header of tests/reference/gbsg2.R (quantities 1-4).",
  n = N, events = sum(d$cens), horizon = H, tau = TAU, progrec_mean = progrec_mean,
  pnodes_breaks = as.numeric(br_pn),
  records = records, interaction_effects = effects, tests = tests,
  ph_tests = list(primary = zph_primary, one_at_a_time = zph_one),
  km = list(medians = medians, at_risk = at_risk),
  checks = checks)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), out_file)
cat(sprintf("wrote %s: %d records, %d interaction effects, %d tests, %d checks\n", out_file,
            length(records), length(effects), length(tests), length(checks)))
