# Risk-based (PATH) analysis checked against R on HSAUR3::respiratory (Davis 1991; Everitt &
# Hothorn, A Handbook of Statistical Analyses Using R: 111 patients with respiratory illness
# randomized to active treatment or placebo in two centres). No other reference test uses these
# data. Outcome: poor respiratory status at the last visit (month 4; the harmful event);
# baseline (month 0) status, age, sex and centre are the prognostic covariates.
# Checked by tests/test_reference_unseen2.py.
#
# Regenerate from the repository root: Rscript tests/reference/unseen2_respiratory.R
#   writes tests/reference/data/unseen2_respiratory.csv (one row per patient: subject, treat
#   (1 = treatment), poor4, poor0, age, male, centre2, fold = subject %% 5 + 1) and
#   tests/reference/unseen2_respiratory.json. Needs HSAUR3 (Debian r-cran-hsaur3), pROC,
#   sandwich, jsonlite.
#
# Package calls (hte_report.path): rm = risk_model("poor4 ~ poor0 + age + male + centre2", d,
# treatment="treat", **call) with call "pooled" (method="pooled"), "crossfit" (pooled,
# crossfit_folds=d.fold) and "control" (method="control-arm"); risk_stratified(rm) (quarters);
# personalized_benefit(p0 = stratum mean risk, rr = stratum RR, rr_ci).
#
# Computed here:
#  * risk model glm(poor4 ~ poor0 + age + male + centre2, binomial) on all patients (pooled) or
#    the placebo arm (control-arm); cross-fitted lp: each fold predicted from the model fitted
#    without it; coefficients, Wald SEs and intervals of the model on its whole population.
#  * performance per population (all, control, treated): pROC::auc and DeLong variance
#    (pROC::var(method = "delong")), c +/- z se clipped to [0, 1], z = (c - 0.5) / se;
#    calibration-in-the-large glm(y ~ offset(lp), binomial) intercept; slope glm(y ~ lp).
#  * calibration: tenths cut(risk, unique(quantile(risk, 0:10/10)), include.lowest = TRUE),
#    mean predicted, observed proportion, binom.test exact interval.
#  * strata: quarters of predicted risk (type-7 quantiles, include.lowest); per stratum the RD
#    from lm(poor4 ~ treat * factor(stratum)) with sandwich HC0, the RR from
#    glm(poisson) + HC0, the OR from glm(binomial) (model vcov), each the stratum's treatment
#    effect (b_treat + b_treat:stratum), checked against the closed forms (Wald RD, Katz log
#    RR, Woolf log OR), which are recorded (exact MLEs of the saturated models). Tests: Wald of
#    the treat x stratum coefficients (ols-HC0, modified-poisson-HC0, logit) and the logit LR; the treat x risk_lp tests from y ~ treat *
#    lp (ols HC3, modified-poisson HC0, logit model-based Wald and LR).
#  * curve: conditional RD and RR (log) of the logit y ~ treat * lp at 61 equally spaced lp
#    values from min to max, delta method.
#  * personalized benefit: ARR = p0 (1 - RR), limits p0 (1 - RR_high), p0 (1 - RR_low), NNT =
#    1 / |ARR|.
source("tests/reference/unseen2_common.R")
suppressPackageStartupMessages({library(pROC); library(sandwich); library(HSAUR3)})

data("respiratory", package = "HSAUR3")
r <- respiratory
b0 <- r[r$month == "0", ]; b4 <- r[r$month == "4", ]
stopifnot(identical(as.character(b0$subject), as.character(b4$subject)))
d <- data.frame(subject = as.integer(as.character(b4$subject)),
                treat = as.integer(b4$treatment == "treatment"),
                poor4 = as.integer(b4$status == "poor"), poor0 = as.integer(b0$status == "poor"),
                age = b4$age, male = as.integer(b4$gender == "male"),
                centre2 = as.integer(b4$centre == "2"))
d$fold <- d$subject %% 5 + 1
write.csv(d, "tests/reference/data/unseen2_respiratory.csv", row.names = FALSE)
d <- read.csv("tests/reference/data/unseen2_respiratory.csv")
FML <- poor4 ~ poor0 + age + male + centre2
GC <- glm.control(epsilon = 1e-14, maxit = 100)
y <- d$poor4; A <- d$treat

pyname <- function(x) ifelse(x == "(Intercept)", "Intercept", x)

risk_of <- function(method, folds = NULL) {
  dev <- if (method == "pooled") rep(TRUE, nrow(d)) else A == 0
  full <- glm(FML, binomial(), data = d[dev, ], control = GC)
  X <- model.matrix(FML, d)
  lp <- as.vector(X %*% coef(full))
  if (!is.null(folds)) for (f in unique(folds)) {
    m <- glm(FML, binomial(), data = d[dev & folds != f, ], control = GC)
    lp[folds == f] <- as.vector(X[folds == f, ] %*% coef(m))
  }
  se <- sqrt(diag(vcov(full)))
  model <- lapply(seq_along(coef(full)), function(j) {
    b <- coef(full)[[j]]
    list(term = pyname(names(coef(full))[j]), estimate = b, std_error = se[[j]],
         conf_low = b - Z * se[[j]], conf_high = b + Z * se[[j]], statistic = b / se[[j]],
         p_value = 2 * pnorm(-abs(b / se[[j]])))
  })
  list(lp = lp, risk = plogis(lp), model = model)
}

performance <- function(rk) {
  perf <- list(); calib <- list()
  for (pop in c("all", "control", "treated")) {
    s <- switch(pop, all = rep(TRUE, nrow(d)), control = A == 0, treated = A == 1)
    yy <- y[s]; rr <- rk$risk[s]; lp <- rk$lp[s]
    roc <- pROC::roc(yy, rr, direction = "<", levels = c(0, 1), quiet = TRUE)
    c <- as.numeric(pROC::auc(roc)); se <- sqrt(pROC::var(roc, method = "delong"))
    base <- list(population = pop, n = sum(s), events = sum(yy))
    perf[[length(perf) + 1]] <- c(list(metric = "c_statistic"), base,
      list(estimate = c, std_error = se, conf_low = max(0, c - Z * se), conf_high = min(1, c + Z * se),
           null = 0.5, statistic = (c - 0.5) / se, p_value = 2 * pnorm(-abs((c - 0.5) / se))))
    ci <- glm(yy ~ 1 + offset(lp), binomial(), control = GC)
    cs <- glm(yy ~ lp, binomial(), control = GC)
    for (k in list(list("calibration_intercept", ci, 1, 0), list("calibration_slope", cs, 2, 1))) {
      b <- coef(k[[2]])[[k[[3]]]]; sb <- sqrt(vcov(k[[2]])[k[[3]], k[[3]]])
      perf[[length(perf) + 1]] <- c(list(metric = k[[1]]), base,
        list(estimate = b, std_error = sb, conf_low = b - Z * sb, conf_high = b + Z * sb,
             null = k[[4]], statistic = (b - k[[4]]) / sb,
             p_value = 2 * pnorm(-abs((b - k[[4]]) / sb))))
    }
    br <- unique(quantile(rr, 0:10 / 10, type = 7))
    grp <- as.integer(cut(rr, br, include.lowest = TRUE))
    for (g in seq_len(length(br) - 1)) {
      yg <- yy[grp == g]
      bt <- binom.test(sum(yg), length(yg))
      calib[[length(calib) + 1]] <- list(population = pop, group = g, risk_low = br[[g]],
        risk_high = br[[g + 1]], n = length(yg), events = sum(yg), predicted = mean(rr[grp == g]),
        observed = mean(yg), conf_low = bt$conf.int[1], conf_high = bt$conf.int[2])
    }
  }
  list(performance = perf, calibration = calib)
}

stratified <- function(rk) {
  br <- quantile(rk$risk, 0:4 / 4, type = 7)
  st <- as.integer(cut(rk$risk, br, include.lowest = TRUE))
  dd <- data.frame(y = y, treat = A, s = factor(st), lp = rk$lp)
  f_rd <- lm(y ~ treat * s, dd)
  f_rr <- glm(y ~ treat * s, poisson(), dd, control = GC)
  f_or <- glm(y ~ treat * s, binomial(), dd, control = GC)
  fits <- list(RD = list(f_rd, vcovHC(f_rd, type = "HC0")),
               RR = list(f_rr, vcovHC(f_rr, type = "HC0")), OR = list(f_or, vcov(f_or)))
  strata <- list()
  for (sc in c("RD", "RR", "OR")) {
    b <- coef(fits[[sc]][[1]]); V <- fits[[sc]][[2]]
    for (k in 1:4) {
      L <- as.numeric(names(b) == "treat" | names(b) == paste0("treat:s", k))
      th <- sum(L * b); se <- sqrt(as.numeric(t(L) %*% V %*% L))
      i <- st == k
      n1 <- sum(i & A == 1); n0 <- sum(i & A == 0); e1 <- sum(y[i & A == 1]); e0 <- sum(y[i & A == 0])
      p1 <- e1 / n1; p0 <- e0 / n0
      closed <- switch(sc, RD = c(p1 - p0, sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)),
                       RR = c(log(p1 / p0), sqrt(1 / e1 - 1 / n1 + 1 / e0 - 1 / n0)),
                       OR = c(qlogis(p1) - qlogis(p0), sqrt(1 / e1 + 1 / (n1 - e1) + 1 / e0 + 1 / (n0 - e0))))
      # the saturated fits against the closed forms (exact MLEs; the records keep these)
      check(paste("closed form", sc, k), c(th, se), closed, 1e-6)
      th <- closed[1]; se <- closed[2]
      vals <- if (sc == "RD") diff_vals(th, se) else ratio_vals(th, se)
      strata[[length(strata) + 1]] <- c(list(stratum = k, scale = sc, risk_low = br[[k]],
        risk_high = br[[k + 1]], mean_risk = mean(rk$risk[i]), n = sum(i), n_treated = n1,
        n_control = n0, events_treated = e1, events_control = e0), vals)
    }
  }
  tests <- list()
  for (sc in c("RD", "RR", "OR")) {
    b <- coef(fits[[sc]][[1]]); V <- fits[[sc]][[2]]; int <- grep("^treat:", names(b))
    tests[[length(tests) + 1]] <- c(list(hypothesis = "equal across strata", test = "wald", scale = sc),
                                    wald(b[int], V[int, int]))
  }
  lr <- 2 * (logLik(f_or)[1] - logLik(glm(y ~ treat + s, binomial(), dd, control = GC))[1])
  tests[[length(tests) + 1]] <- list(hypothesis = "equal across strata", test = "lr", scale = "OR",
                                     statistic = lr, df = 3, p_value = pchisq(lr, 3, lower.tail = FALSE))
  g_rd <- lm(y ~ treat * lp, dd)
  g_rr <- glm(y ~ treat * lp, poisson(), dd, control = GC)
  g_or <- glm(y ~ treat * lp, binomial(), dd, control = GC)
  for (k in list(list("RD", g_rd, vcovHC(g_rd, type = "HC3")), list("RR", g_rr, vcovHC(g_rr, type = "HC0")),
                 list("OR", g_or, vcov(g_or)))) {
    tests[[length(tests) + 1]] <- c(list(hypothesis = "treatment x risk_lp", test = "wald", scale = k[[1]]),
                                    wald(coef(k[[2]])[["treat:lp"]], k[[3]]["treat:lp", "treat:lp", drop = FALSE]))
  }
  lr <- 2 * (logLik(g_or)[1] - logLik(glm(y ~ treat + lp, binomial(), dd, control = GC))[1])
  tests[[length(tests) + 1]] <- list(hypothesis = "treatment x risk_lp", test = "lr", scale = "OR",
                                     statistic = lr, df = 1, p_value = pchisq(lr, 1, lower.tail = FALSE))
  # curve
  b <- coef(g_or); V <- vcov(g_or)
  grid <- seq(min(rk$lp), max(rk$lp), length.out = 61)
  curve <- list()
  for (x in grid) {
    x1 <- c(1, 1, x, x); x0 <- c(1, 0, x, 0)
    m1 <- plogis(sum(x1 * b)); m0 <- plogis(sum(x0 * b))
    g1 <- m1 * (1 - m1) * x1; g0 <- m0 * (1 - m0) * x0
    for (sc in c("RD", "RR")) {
      if (sc == "RD") { th <- m1 - m0; g <- g1 - g0 } else { th <- log(m1 / m0); g <- g1 / m1 - g0 / m0 }
      se <- sqrt(as.numeric(t(g) %*% V %*% g))
      curve[[length(curve) + 1]] <- c(list(lp = x, risk = plogis(x), scale = sc, mu_treated = m1,
                                           mu_control = m0),
                                      if (sc == "RD") diff_vals(th, se) else ratio_vals(th, se))
    }
  }
  benefit <- lapply(Filter(function(s) s$scale == "RR", strata), function(s) {
    p0 <- s$mean_risk
    arr <- p0 * (1 - s$estimate)
    list(stratum = s$stratum, p0 = p0, rr = s$estimate, arr = arr,
         arr_low = p0 * (1 - s$conf_high), arr_high = p0 * (1 - s$conf_low), nnt = 1 / abs(arr))
  })
  list(edges = unname(br), strata = strata, tests = tests, curve = curve, benefit = benefit)
}

run_call <- function(method, crossfit) {
  rk <- risk_of(method, if (crossfit) d$fold else NULL)
  c(list(kwargs = c(list(method = if (method == "pooled") "pooled" else "control-arm"),
                    if (crossfit) list(crossfit_folds = "fold") else list()),
         lp = rk$lp, model = rk$model), performance(rk), stratified(rk))
}

out <- list(
  generated_by = sprintf("tests/reference/unseen2_respiratory.R; %s; HSAUR3 %s; pROC %s; sandwich %s",
                         R.version.string, packageVersion("HSAUR3"), packageVersion("pROC"),
                         packageVersion("sandwich")),
  formula = "poor4 ~ poor0 + age + male + centre2",
  calls = list(pooled = run_call("pooled", FALSE), crossfit = run_call("pooled", TRUE),
               control = run_call("control", FALSE)))
out$checks <- CHECKS
write_reference(out, "tests/reference/unseen2_respiratory.json")
