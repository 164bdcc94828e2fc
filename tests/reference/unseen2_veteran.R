# Survival on the absolute scale, checked against R on survival::veteran (Veterans'
# Administration lung cancer trial, Kalbfleisch & Prentice 1980: 137 patients randomized to
# standard (trt 1) or test (trt 2) chemotherapy, time to death in days, 128 deaths). No other
# reference test uses these data. Checked by tests/test_reference_unseen2.py (rel 1e-6).
#
# Regenerate from the repository root: Rscript tests/reference/unseen2_veteran.R
#   writes tests/reference/data/unseen2_veteran.csv (the data, treat = trt == 2) and
#   tests/reference/unseen2_veteran.json. Needs survival (>= 3.0), numDeriv, jsonlite.
#
# The package calls these numbers describe (one modifier at a time, the default strategy):
#   hr.fit("Surv(time, status) ~ treat * (C(celltype) + C(prior) + karno) + age", d,
#          treatment="treat", horizons=[60, 90], rmst_tau=90,
#          display_cutpoints={"karno": [60]}, at={"karno": [40, 60, 80]}, **call)
#   call "efron_model": ties="efron", variance="model";
#   call "breslow_robust": ties="breslow", variance="robust";
#   call "joint": strategy="joint" (Efron, model variance): one model treat * (celltype + prior +
#     karno) + age; HRs and conditional SurvDiffs at the profile (celltype and prior at their
#     modes, karno and age at their means), standardized SurvDiffs over each subgroup from the
#     joint model, Wald / LR (reduced: the joint model without the modifier's interaction
#     columns) and equality tests;
#   call "within": strategy="within-subgroup" (Efron, model variance): the one-at-a-time rows and
#     tests, plus coxph(Surv ~ treat + age) within each subgroup (karno: < 60 / >= 60) with its
#     HR, standardized SurvDiff over the subgroup's patients and KM RMSTDiff.
#
# Per modifier m the Cox model coxph(Surv(time, status) ~ treat * m + age) (prior and celltype
# factors, karno linear); overall the primary model coxph(Surv ~ treat + age).
#  - HR per level (exp(b_treat + b_int)), at karno 40 / 60 / 80, ratios of HRs, Wald and LR
#    tests (LR: 2 (loglik - loglik of treat + m + age)).
#  - SurvDiff(h), standardized over a subgroup S: mean_S S_i(h | treat = 1) - S_i(h | treat = 0)
#    with S_i(h) = exp(-H0(h) exp((x_i - xbar)' b)), H0 the Breslow baseline at the centre xbar
#    (survfit(fit, ctype = 1) at fit$means). This script computes it by a route of its own:
#    theta = (b, H0(h)); Var(b) = vcov(fit) (model or robust); Cov(b, H0) = V dH0/db, the
#    derivative by numDeriv::jacobian of H0(h) from survfit(coxph(..., init = b', iter.max = 0),
#    ctype = 1); Var(H0) = dH0' V dH0 + the martingale part, which is survfit's own variance of
#    the cumulative hazard at the centre (std.err^2, model-based fit) minus dH0' V_model dH0;
#    the SurvDiffs' covariance is J Cov(theta) J' with J = numDeriv::jacobian of the
#    standardized differences in theta. (This is the package's documented estimand and
#    variance: the covariates are taken as fixed, the baseline hazard's variance included.)
#    Conditional SurvDiff at karno 40 / 60 / 80 with age at its mean.
#  - RMSTDiff(90): Kaplan-Meier per arm within each subgroup, summary(survfit, rmean = 90)
#    rmean and se(rmean); difference, SE = sqrt(se1^2 + se0^2).
#  - Equality tests (K - 1 differences from the first level) and differences of SurvDiffs /
#    RMSTDiffs (level - first level) for the factors; ph_p_value = cox.zph(coxph(Surv ~
#    treat, subgroup rows), transform = "km") p of treat.
# Subgroups: the levels of celltype and prior, karno < 60 / >= 60 (the display cutpoint).
source("tests/reference/unseen2_common.R")
suppressPackageStartupMessages(library(survival))

v <- survival::veteran
d <- data.frame(time = v$time, status = v$status, treat = as.integer(v$trt == 2),
                celltype = as.character(v$celltype), prior = as.integer(v$prior),
                karno = v$karno, age = v$age, diagtime = v$diagtime)
write.csv(d, "tests/reference/data/unseen2_veteran.csv", row.names = FALSE)
d <- read.csv("tests/reference/data/unseen2_veteran.csv", stringsAsFactors = FALSE)
d$celltype <- factor(d$celltype)          # levels sorted: adeno, large, smallcell, squamous
d$prior <- factor(d$prior)                # 0, 10
N <- nrow(d)
HORIZONS <- c(60, 90)
TAU <- 90
AT_KARNO <- c(40, 60, 80)
CTL <- coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15)

counts_of <- function(rows) {
  r1 <- rows & d$treat == 1; r0 <- rows & d$treat == 0
  list(n = sum(rows), n_treated = sum(r1), n_control = sum(r0),
       events_treated = sum(d$status[r1]), events_control = sum(d$status[r0]),
       exposure_treated = sum(d$time[r1]), exposure_control = sum(d$time[r0]))
}

rmst_of <- function(rows) {
  out <- sapply(c(1, 0), function(a) {
    tab <- summary(survfit(Surv(time, status) ~ 1, data = d[rows & d$treat == a, ]),
                   rmean = TAU)$table
    c(tab[["rmean"]], tab[["se(rmean)"]])
  })
  list(mu1 = out[1, 1], mu0 = out[1, 2], est = out[1, 1] - out[1, 2],
       se = sqrt(out[2, 1]^2 + out[2, 2]^2))
}

run_call <- function(ties, robust, strategy = "one-at-a-time") {
  records <- list(); effects <- list(); tests <- list()
  add_record <- function(analysis, modifier, level, scale, method, vals, value = NA,
                         horizon = NA, counts = list(), ph = NA, mu = c(NA, NA)) {
    records[[length(records) + 1]] <<- c(
      list(analysis = analysis, modifier = modifier, level = level, value = value,
           scale = scale, method = method, horizon = horizon, mu_treated = mu[1],
           mu_control = mu[2]), vals, counts, list(ph_p_value = ph))
  }
  add_effect <- function(modifier, level, reference, scale, method, vals, horizon = NA)
    effects[[length(effects) + 1]] <<- c(list(modifier = modifier, level = level,
                                             reference = reference, scale = scale,
                                             method = method, horizon = horizon), vals)
  add_test <- function(modifier, scale, test, res, horizon = NA)
    tests[[length(tests) + 1]] <<- c(list(modifier = modifier, scale = scale, test = test,
                                          horizon = horizon), res)
  cox <- function(f, data = d, ...) coxph(f, data = data, ties = ties, control = CTL, x = TRUE, ...)
  ph_p <- function(rows) {
    fit <- coxph(Surv(time, status) ~ treat, data = d[rows, ], ties = ties, control = CTL)
    cox.zph(fit, transform = "km")$table["treat", "p"]
  }
  # standardized / conditional survival differences at h (rows of nd1 / nd0 averaged by W)
  surv_diff <- function(f, fit_model, V, nd1, nd0, W, h, data = d) {
    b <- coef(fit_model)
    H0_at <- function(bb) {
      g <- suppressWarnings(coxph(f, data = data, ties = ties, init = bb, model = TRUE, x = TRUE,
                                  control = coxph.control(iter.max = 0)))
      sf <- suppressWarnings(survfit(g, ctype = 1, se.fit = FALSE))
      sf$cumhaz[max(which(sf$time <= h))]
    }
    sf <- suppressWarnings(survfit(fit_model, ctype = 1, se.fit = TRUE))
    k <- max(which(sf$time <= h))
    H0 <- sf$cumhaz[k]
    check("H0 at b", H0_at(b), H0, 1e-12)
    dH <- as.vector(jacobian(H0_at, b))
    mart <- sf$std.err[k]^2 - as.numeric(t(dH) %*% vcov(fit_model) %*% dH)
    CT <- rbind(cbind(V, V %*% dH), c(t(dH) %*% V, as.numeric(t(dH) %*% V %*% dH) + mart))
    tt <- delete.response(terms(fit_model))
    Zc <- function(nd) sweep(model.matrix(tt, model.frame(tt, nd, xlev = fit_model$xlevels))[, -1, drop = FALSE],
                             2, fit_model$means)
    Z1 <- Zc(nd1); Z0 <- Zc(nd0)
    stopifnot(identical(colnames(Z1), names(b)))
    p <- length(b)
    arms <- function(th) {
      bb <- th[1:p]; H <- th[p + 1]
      c(W %*% exp(-H * exp(Z1 %*% bb)), W %*% exp(-H * exp(Z0 %*% bb)))
    }
    th <- c(b, H0)
    K <- nrow(W)
    mu <- arms(th)
    J <- jacobian(function(x) { a <- arms(x); a[1:K] - a[K + 1:K] }, th)
    list(est = mu[1:K] - mu[K + 1:K], cov = J %*% CT %*% t(J), mu1 = mu[1:K], mu0 = mu[K + 1:K])
  }

  subgroups <- list(
    celltype = lapply(setNames(levels(d$celltype), levels(d$celltype)), function(l) d$celltype == l),
    prior = lapply(setNames(levels(d$prior), levels(d$prior)), function(l) d$prior == l),
    karno = list("< 60" = d$karno < 60, ">= 60" = d$karno >= 60))
  age_mean <- mean(d$age)
  if (strategy == "joint") {
    # one model with every interaction; conditional rows at the profile (celltype and prior at
    # their modes, karno and age at their means over the 137 patients)
    f_full <- Surv(time, status) ~ treat * (celltype + prior + karno) + age
    fm <- cox(f_full)
    b <- coef(fm); V <- vcov(fm)
    prof <- data.frame(treat = 0, celltype = factor(names(which.max(table(d$celltype))),
                                                     levels = levels(d$celltype)),
                       prior = factor(names(which.max(table(d$prior))), levels = levels(d$prior)),
                       karno = mean(d$karno), age = age_mean)
    tt <- delete.response(terms(fm))
    xrow <- function(nd) model.matrix(tt, model.frame(tt, nd, xlev = fm$xlevels))[, -1, drop = FALSE]
    hr_at <- function(nd) {  # log HR at a profile row: x(treat = 1) - x(treat = 0)
      L <- as.vector(xrow(transform(nd, treat = 1)) - xrow(transform(nd, treat = 0)))
      c(sum(L * b), sqrt(as.numeric(t(L) %*% V %*% L)))
    }
    for (m in c("celltype", "prior", "karno")) {
      int <- grep(sprintf("^treat:%s", m), names(b))
      add_test(m, "HR", "wald", wald(b[int], V[int, int, drop = FALSE]))
      X <- fm$x[, -int, drop = FALSE]
      red <- coxph(Surv(d$time, d$status) ~ X, ties = ties, control = CTL)
      lr <- 2 * (fm$loglik[2] - red$loglik[2])
      add_test(m, "HR", "lr", list(statistic = lr, df = length(int),
                                   p_value = pchisq(lr, length(int), lower.tail = FALSE)))
      sg <- subgroups[[m]]
      if (m != "karno") {
        lev <- levels(d[[m]])
        for (i in seq_along(lev)) {
          nd <- prof; nd[[m]] <- factor(lev[i], levels = lev)
          h <- hr_at(nd)
          rows <- sg[[lev[i]]]
          add_record("joint", m, lev[i], "HR", "conditional", ratio_vals(h[1], h[2]),
                     counts = counts_of(rows), ph = ph_p(rows))
          if (i > 1) {
            j <- which(names(b) == paste0("treat:", m, lev[i]))
            add_effect(m, lev[i], lev[1], "ratio of HRs", "conditional",
                       ratio_vals(b[[j]], sqrt(V[j, j])))
          }
        }
      } else {
        j <- which(names(b) == "treat:karno")
        add_effect(m, "per unit", "", "ratio of HRs", "coefficient", ratio_vals(b[[j]], sqrt(V[j, j])))
        nd <- prof[rep(1, length(AT_KARNO)), ]; nd$karno <- AT_KARNO
        for (i in seq_along(AT_KARNO)) {
          h <- hr_at(nd[i, ])
          add_record("joint", m, sprintf("at %g", AT_KARNO[i]), "HR", "conditional",
                     ratio_vals(h[1], h[2]), value = AT_KARNO[i])
        }
        for (hz in HORIZONS) {
          sd <- surv_diff(f_full, fm, V, transform(nd, treat = 1), nd, diag(length(AT_KARNO)), hz)
          for (i in seq_along(AT_KARNO))
            add_record("joint", m, sprintf("at %g", AT_KARNO[i]), "SurvDiff", "conditional",
                       diff_vals(sd$est[i], sqrt(sd$cov[i, i])), value = AT_KARNO[i], horizon = hz,
                       mu = c(sd$mu1[i], sd$mu0[i]))
        }
      }
      W <- t(sapply(sg, function(r) r / sum(r)))
      K <- length(sg); C <- cbind(-1, diag(K - 1))
      cnt <- lapply(sg, counts_of); ph <- lapply(sg, ph_p)
      for (hz in HORIZONS) {
        sd <- surv_diff(f_full, fm, V, transform(d, treat = 1), transform(d, treat = 0), W, hz)
        for (i in seq_len(K))
          add_record("joint", m, names(sg)[i], "SurvDiff", "standardized",
                     diff_vals(sd$est[i], sqrt(sd$cov[i, i])), horizon = hz, counts = cnt[[i]],
                     ph = ph[[i]], mu = c(sd$mu1[i], sd$mu0[i]))
        if (m != "karno") {
          add_test(m, "SurvDiff", "equality", wald(C %*% sd$est, C %*% sd$cov %*% t(C)), hz)
          for (i in 2:K) {
            Li <- rep(0, K); Li[1] <- -1; Li[i] <- 1
            add_effect(m, names(sg)[i], names(sg)[1], "difference of survival differences",
                       "standardized", diff_vals(sum(Li * sd$est),
                                                 sqrt(as.numeric(t(Li) %*% sd$cov %*% Li))), hz)
          }
        }
      }
      rm <- lapply(sg, rmst_of)
      for (i in seq_len(K))
        add_record("joint", m, names(sg)[i], "RMSTDiff", "km",
                   diff_vals(rm[[i]]$est, rm[[i]]$se), horizon = TAU, counts = cnt[[i]],
                   ph = ph[[i]], mu = c(rm[[i]]$mu1, rm[[i]]$mu0))
      if (m != "karno") {
        est <- sapply(rm, `[[`, "est"); se <- sapply(rm, `[[`, "se")
        add_test(m, "RMSTDiff", "equality", wald(C %*% est, C %*% diag(se^2) %*% t(C)), TAU)
        for (i in 2:K)
          add_effect(m, names(sg)[i], names(sg)[1], "difference of RMST differences", "km",
                     diff_vals(est[i] - est[1], sqrt(se[i]^2 + se[1]^2)))
      }
    }
  }
  if (strategy == "within-subgroup") {
    # separate fits treat + age within each subgroup (karno: the display categories)
    for (m in c("celltype", "prior", "karno")) for (l in names(subgroups[[m]])) {
      rows <- subgroups[[m]][[l]]
      sub <- d[rows, ]
      f_w <- Surv(time, status) ~ treat + age
      fw <- cox(f_w, data = sub)
      cnt <- counts_of(rows); ph <- ph_p(rows)
      add_record("within-subgroup", m, l, "HR", "main-effects",
                 ratio_vals(coef(fw)[["treat"]], sqrt(vcov(fw)["treat", "treat"])),
                 counts = cnt, ph = ph)
      for (hz in HORIZONS) {
        sd <- surv_diff(f_w, fw, vcov(fw), transform(sub, treat = 1), transform(sub, treat = 0),
                        matrix(1 / nrow(sub), 1, nrow(sub)), hz, data = sub)
        add_record("within-subgroup", m, l, "SurvDiff", "standardized",
                   diff_vals(sd$est, sqrt(sd$cov[1, 1])), horizon = hz, counts = cnt, ph = ph,
                   mu = c(sd$mu1, sd$mu0))
      }
      rm <- rmst_of(rows)
      add_record("within-subgroup", m, l, "RMSTDiff", "km", diff_vals(rm$est, rm$se),
                 horizon = TAU, counts = cnt, ph = ph, mu = c(rm$mu1, rm$mu0))
    }
  }
  for (m in if (strategy == "joint") character() else c("celltype", "prior", "karno")) {
    f_full <- as.formula(sprintf("Surv(time, status) ~ treat * %s + age", m))
    f_red <- as.formula(sprintf("Surv(time, status) ~ treat + %s + age", m))
    fm <- cox(f_full)
    fit <- if (robust) cox(f_full, robust = TRUE) else fm
    b <- coef(fit); V <- vcov(fit)
    int <- grep("^treat:", names(b))
    add_test(m, "HR", "wald", wald(b[int], V[int, int, drop = FALSE]))
    lr <- 2 * (fm$loglik[2] - cox(f_red)$loglik[2])
    add_test(m, "HR", "lr", list(statistic = lr, df = length(int),
                                 p_value = pchisq(lr, length(int), lower.tail = FALSE)))
    it <- which(names(b) == "treat")
    sg <- subgroups[[m]]
    if (m != "karno") {
      lev <- levels(d[[m]])
      for (i in seq_along(lev)) {
        L <- rep(0, length(b)); L[it] <- 1
        if (i > 1) L[which(names(b) == paste0("treat:", m, lev[i]))] <- 1
        rows <- sg[[lev[i]]]
        add_record("one-at-a-time", m, lev[i], "HR", "conditional",
                   ratio_vals(sum(L * b), sqrt(as.numeric(t(L) %*% V %*% L))),
                   counts = counts_of(rows), ph = ph_p(rows))
        if (i > 1) {
          j <- which(names(b) == paste0("treat:", m, lev[i]))
          add_effect(m, lev[i], lev[1], "ratio of HRs", "conditional",
                     ratio_vals(b[[j]], sqrt(V[j, j])))
        }
      }
    } else {
      j <- which(names(b) == "treat:karno")
      add_effect(m, "per unit", "", "ratio of HRs", "coefficient", ratio_vals(b[[j]], sqrt(V[j, j])))
      nd <- data.frame(treat = 0, karno = AT_KARNO, age = age_mean)
      for (i in seq_along(AT_KARNO)) {
        L <- rep(0, length(b)); L[it] <- 1; L[j] <- AT_KARNO[i]
        add_record("one-at-a-time", m, sprintf("at %g", AT_KARNO[i]), "HR", "conditional",
                   ratio_vals(sum(L * b), sqrt(as.numeric(t(L) %*% V %*% L))), value = AT_KARNO[i])
      }
      for (h in HORIZONS) {
        sd <- surv_diff(f_full, fm, V, transform(nd, treat = 1), nd, diag(length(AT_KARNO)), h)
        for (i in seq_along(AT_KARNO))
          add_record("one-at-a-time", m, sprintf("at %g", AT_KARNO[i]), "SurvDiff", "conditional",
                     diff_vals(sd$est[i], sqrt(sd$cov[i, i])), value = AT_KARNO[i], horizon = h,
                     mu = c(sd$mu1[i], sd$mu0[i]))
      }
    }
    W <- t(sapply(sg, function(r) r / sum(r)))
    K <- length(sg); C <- cbind(-1, diag(K - 1))
    cnt <- lapply(sg, counts_of); ph <- lapply(sg, ph_p)
    for (h in HORIZONS) {
      sd <- surv_diff(f_full, fm, V, transform(d, treat = 1), transform(d, treat = 0), W, h)
      for (i in seq_len(K))
        add_record("one-at-a-time", m, names(sg)[i], "SurvDiff", "standardized",
                   diff_vals(sd$est[i], sqrt(sd$cov[i, i])), horizon = h, counts = cnt[[i]],
                   ph = ph[[i]], mu = c(sd$mu1[i], sd$mu0[i]))
      if (m != "karno") {
        add_test(m, "SurvDiff", "equality", wald(C %*% sd$est, C %*% sd$cov %*% t(C)), h)
        for (i in 2:K) {
          Li <- rep(0, K); Li[1] <- -1; Li[i] <- 1
          add_effect(m, names(sg)[i], names(sg)[1], "difference of survival differences",
                     "standardized", diff_vals(sum(Li * sd$est),
                                               sqrt(as.numeric(t(Li) %*% sd$cov %*% Li))), h)
        }
      }
    }
    rm <- lapply(sg, rmst_of)
    for (i in seq_len(K))
      add_record("one-at-a-time", m, names(sg)[i], "RMSTDiff", "km",
                 diff_vals(rm[[i]]$est, rm[[i]]$se), horizon = TAU, counts = cnt[[i]],
                 ph = ph[[i]], mu = c(rm[[i]]$mu1, rm[[i]]$mu0))
    if (m != "karno") {
      est <- sapply(rm, `[[`, "est"); se <- sapply(rm, `[[`, "se")
      add_test(m, "RMSTDiff", "equality", wald(C %*% est, C %*% diag(se^2) %*% t(C)), TAU)
      for (i in 2:K)
        add_effect(m, names(sg)[i], names(sg)[1], "difference of RMST differences", "km",
                   diff_vals(est[i] - est[1], sqrt(se[i]^2 + se[1]^2)))  # horizon NA, as the package
    }
  }
  # overall: the primary analysis treat + age on all patients
  f_p <- Surv(time, status) ~ treat + age
  fm <- cox(f_p)
  fit <- if (robust) cox(f_p, robust = TRUE) else fm
  all_rows <- rep(TRUE, N); cnt <- counts_of(all_rows); ph <- ph_p(all_rows)
  add_record("overall-adjusted", "All patients", "", "HR", "main-effects",
             ratio_vals(coef(fit)[["treat"]], sqrt(vcov(fit)["treat", "treat"])),
             counts = cnt, ph = ph)
  for (h in HORIZONS) {
    sd <- surv_diff(f_p, fm, vcov(fit), transform(d, treat = 1), transform(d, treat = 0),
                    matrix(1 / N, 1, N), h)
    add_record("overall-adjusted", "All patients", "", "SurvDiff", "standardized",
               diff_vals(sd$est, sqrt(sd$cov[1, 1])), horizon = h, counts = cnt, ph = ph,
               mu = c(sd$mu1, sd$mu0))
  }
  rm <- rmst_of(all_rows)
  add_record("overall-adjusted", "All patients", "", "RMSTDiff", "km", diff_vals(rm$est, rm$se),
             horizon = TAU, counts = cnt, ph = ph, mu = c(rm$mu1, rm$mu0))
  list(kwargs = c(list(ties = ties, variance = if (robust) "robust" else "model"),
                  if (strategy != "one-at-a-time") list(strategy = strategy)),
       records = records, interaction_effects = effects, tests = tests)
}

out <- list(
  generated_by = sprintf("tests/reference/unseen2_veteran.R; %s; survival %s; numDeriv %s",
                         R.version.string, packageVersion("survival"), packageVersion("numDeriv")),
  formula = "Surv(time, status) ~ treat * (C(celltype) + C(prior) + karno) + age",
  common = list(treatment = "treat", horizons = HORIZONS, rmst_tau = TAU,
                display_cutpoints = list(karno = list(60)), at = list(karno = AT_KARNO)),
  calls = list(efron_model = run_call("efron", FALSE), breslow_robust = run_call("breslow", TRUE),
               joint = run_call("efron", FALSE, "joint"),
               within = run_call("efron", FALSE, "within-subgroup")))
out$checks <- CHECKS
write_reference(out, "tests/reference/unseen2_veteran.json")
