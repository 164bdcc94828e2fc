# Independent R reference numbers for hte_report's analysis strategies
# (one-at-a-time, within-subgroup, joint, overall-adjusted, overall-unadjusted).
#
# Regenerate from the repository root:
#     Rscript tests/reference/strategies.R
#
# Reads   survival::colon (etype == 2), MASS::anorexia, hte_report/_datasets/rossi.csv
# Writes  tests/reference/data/colon_death.csv, tests/reference/data/anorexia.csv,
#         tests/reference/strategies.json
# The analyses use the CSVs as read back with read.csv (checked equal to the R data sets), so
# Python and R see identical inputs. Needs R >= 4.2 with survival, sandwich, MASS, jsonlite
# (lmtest for two cross-checks).
#
# Cases
#  - "colon": survival::colon, death records (etype == 2), 929 patients; Cox models
#    (coxph, ties = "efron", model-based vcov) of Surv(time, status). Treatment rx, control
#    "Obs"; comparisons "Lev vs Obs" and "Lev+5FU vs Obs", each analysed on the patients of its
#    two arms only with trt = 1 for the active arm. Modifiers sex, obstruct, node4 (0/1, ref 0),
#    differ (1/2/3, ref 1, has NA) as factors; age continuous, linear. Adjustment: factor(surg).
#      one-at-a-time  coxph(Surv ~ trt * m + factor(surg)) per modifier, complete cases of
#                     (time, status, trt, m, surg). Subgroup HR per level exp(b_trt + b_int_l)
#                     (ref: exp(b_trt)), interaction effect exp(b_int_l); age: conditional HR at
#                     age 50/60/70 and exp(b_int) per year ("per unit"). Wald + LR tests
#                     (LR reduced: trt + m + factor(surg)).
#      within-subgroup coxph(Surv ~ trt + factor(surg)) within each level (categorical only).
#      joint          coxph(Surv ~ trt * (factor(sex) + factor(obstruct) + factor(node4) +
#                     factor(differ) + age) + factor(surg)), complete cases over all of these;
#                     interaction effects; Wald + LR per modifier (LR reduced = without that
#                     modifier's treatment interaction terms, main effects kept).
#      overall-adjusted coxph(Surv ~ trt + factor(surg)); overall-unadjusted coxph(Surv ~ trt).
#  - "rossi": binary arrest, randomized fin (comparison "1 vs 0"), 432 rows, no NA. Modifiers
#    wexp, mar (factors, ref 0), age (continuous, linear). Adjustment: prio (linear).
#    Working models: "ols" = lm, vcov sandwich::vcovHC(type = "HC3"), scales RD, RR (RR from the
#    standardized means); "modified-poisson" = glm(poisson(log)), vcovHC(type = "HC0"), RD, RR;
#    "logit" = glm(binomial), model vcov, RD, RR, OR.
#      one-at-a-time  arrest ~ fin * m + prio on all rows: standardized subgroup effects per
#                     level, interaction effects per non-ref level; age: conditional effect
#                     (native scale) at the type-7 quartiles q25/q50/q75 with prio at its mean,
#                     interaction effect per unit (native scale), "category" standardized
#                     effects within age < 25 and age >= 25. Wald (model's vcov); LR logit only.
#      within-subgroup arrest ~ fin + prio within each level, standardized over that level.
#      overall-adjusted arrest ~ fin + prio standardized over all rows; overall-unadjusted
#                     arrest ~ fin.
#  - "anorexia": MASS::anorexia, continuous Postwt, Treat with control "Cont"; comparisons
#    "CBT vs Cont", "FT vs Cont" (two arms each). Model "ols": lm, vcovHC HC3, scale MD.
#      one-at-a-time  lm(Postwt ~ trt * Prewt): conditional MD at the type-7 quartiles of Prewt
#                     (on the comparison's rows), interaction effect b_int per unit, category
#                     standardized MD within Prewt < 82 / >= 82; Wald test (1 df, HC3).
#      within-subgroup lm(Postwt ~ trt) within Prewt < 82 / >= 82: MD = b_trt, HC3 SE.
#      overall-adjusted lm(Postwt ~ trt + Prewt) (standardized MD = b_trt);
#      overall-unadjusted lm(Postwt ~ trt).
#
# Conventions
#  - Fitting: coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15);
#    glm.control(epsilon = 1e-15, maxit = 500) (convergence checked).
#  - Ratio scales (HR, RR, OR and ratios of these): estimate on the ratio scale, std_error =
#    SE of the log ratio, CI = exp(log est +/- qnorm(0.975) * se). Differences (RD, MD): SE
#    and CI on the difference scale. For interaction effects `scale` names the underlying
#    effect: RD = difference of RDs, RR = ratio of RRs, OR = ratio of ORs, HR = ratio of HRs,
#    MD = difference of MDs (per unit of a continuous modifier: the interaction coefficient
#    on the model's native scale, exponentiated for log/logit/Cox).
#  - Wald: b' V^-1 b over the treatment x modifier coefficients with the stated vcov; df =
#    number of coefficients; p = pchisq upper tail. LR: 2 * (loglik full - loglik reduced).
#  - Complete cases: rows with no NA in the variables of that model only.
#  - Quantiles: quantile(type = 7) on the rows of that analysis.
#  - Standardized (g-computation) effect over rows S: mu_t = mean_S predict(response | trt = t);
#    RD = mu1 - mu0, RR = mu1 / mu0, OR = odds(mu1) / odds(mu0). Delta method with the
#    analytic gradient d mu_t / d beta = mean_S (d mu / d eta)(x_i(t)) x_i(t) and the model's
#    vcov (SE of log RR / log OR). Interaction effect of level l vs the reference level:
#    theta_l - theta_ref (theta = RD, log RR, log OR) from the same one-at-a-time model, with
#    the joint gradient.
#  - Fields: n = rows (patients) in the fitted model, n_subgroup = rows in the subgroup /
#    category the record describes (NA for whole-model quantities), events / events_subgroup
#    likewise for Cox (NA otherwise), value = modifier value for conditional records.

suppressPackageStartupMessages({
  library(survival)
  library(sandwich)
  library(MASS)
  library(jsonlite)
  library(lmtest)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
repo_dir <- normalizePath(file.path(ref_dir, "..", ".."))
data_dir <- file.path(ref_dir, "data")
out_file <- file.path(ref_dir, "strategies.json")

Z <- qnorm(0.975)
RATIO <- c("HR", "RR", "OR")

records <- list()
tests <- list()
checks <- list()

# theta is on the native scale: log ratio for ratio scales, difference otherwise.
add_record <- function(case, comparison, analysis, modifier, level, scale, model, variance,
                       quantity, theta, se, n, value = NA, n_subgroup = NA, events = NA,
                       events_subgroup = NA, note = NA) {
  if (scale %in% RATIO) {
    est <- exp(theta); lo <- exp(theta - Z * se); hi <- exp(theta + Z * se)
  } else {
    est <- theta; lo <- theta - Z * se; hi <- theta + Z * se
  }
  records[[length(records) + 1]] <<- list(
    case = case, comparison = comparison, analysis = analysis, modifier = modifier,
    level = level, value = value, scale = scale, model = model, variance = variance,
    quantity = quantity, estimate = est, std_error = se, conf_low = lo, conf_high = hi,
    n = n, n_subgroup = n_subgroup, events = events, events_subgroup = events_subgroup,
    note = note)
}

wald_stat <- function(b, V) {
  W <- as.numeric(t(b) %*% solve(V, b))
  c(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}

add_test <- function(case, comparison, analysis, modifier, model, variance, test, statistic,
                     df, n, events = NA) {
  tests[[length(tests) + 1]] <<- list(
    case = case, comparison = comparison, analysis = analysis, modifier = modifier,
    model = model, variance = variance, test = test, statistic = statistic, df = df,
    p_value = pchisq(statistic, df, lower.tail = FALSE), n = n, events = events)
}

check <- function(name, a, b, tol = 1e-9) {
  ok <- isTRUE(all.equal(as.numeric(a), as.numeric(b), tolerance = tol))
  checks[[length(checks) + 1]] <<- list(check = name, ok = ok,
                                        max_abs_diff = max(abs(as.numeric(a) - as.numeric(b))))
  if (!ok) stop("check failed: ", name, " (", paste(a, collapse = ","), " vs ",
                paste(b, collapse = ","), ")")
}

# linear combination L b with SE sqrt(L V L'); L given as a named vector
lincomb <- function(b, V, L) {
  l <- setNames(numeric(length(b)), names(b))
  l[names(L)] <- L
  c(theta = sum(l * b), se = sqrt(drop(t(l) %*% V %*% l)))
}

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
colon_cols <- c("id", "rx", "sex", "age", "obstruct", "perfor", "adhere", "nodes", "node4",
                "differ", "extent", "surg", "time", "status")
cd <- survival::colon
cd <- cd[cd$etype == 2, colon_cols]
cd$rx <- as.character(cd$rx)
rownames(cd) <- NULL
write.csv(cd, file.path(data_dir, "colon_death.csv"), row.names = FALSE, na = "")
colon <- read.csv(file.path(data_dir, "colon_death.csv"), stringsAsFactors = FALSE)
stopifnot(isTRUE(all.equal(colon, cd, check.attributes = FALSE)), nrow(colon) == 929)

an <- MASS::anorexia
an$Treat <- as.character(an$Treat)
write.csv(an, file.path(data_dir, "anorexia.csv"), row.names = FALSE)
anorexia <- read.csv(file.path(data_dir, "anorexia.csv"), stringsAsFactors = FALSE)
stopifnot(isTRUE(all.equal(anorexia, an, check.attributes = FALSE)), nrow(anorexia) == 72)

rossi <- read.csv(file.path(repo_dir, "hte_report", "_datasets", "rossi.csv"))
stopifnot(nrow(rossi) == 432, !anyNA(rossi))

# ---------------------------------------------------------------------------------------------
# Case colon (Cox)
# ---------------------------------------------------------------------------------------------
CTL_COX <- coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15)
cox <- function(f, d) coxph(f, data = d, ties = "efron", control = CTL_COX)
colon_cat <- c("sex", "obstruct", "node4", "differ")
colon_ages <- c(50, 60, 70)

for (active in c("Lev", "Lev+5FU")) {
  comp <- paste(active, "vs Obs")
  d <- colon[colon$rx %in% c("Obs", active), ]
  d$trt <- as.numeric(d$rx == active)
  rec <- function(...) add_record("colon", comp, ..., model = "cox", variance = "model")
  tst <- function(...) add_test("colon", comp, ..., model = "cox", variance = "model")

  # one-at-a-time
  for (m in c(colon_cat, "age")) {
    dd <- d[complete.cases(d[, c("time", "status", "trt", m, "surg")]), ]
    is_cat <- m %in% colon_cat
    dd$mf <- if (is_cat) factor(dd[[m]]) else dd[[m]]
    fit <- cox(Surv(time, status) ~ trt * mf + factor(surg), dd)
    red <- cox(Surv(time, status) ~ trt + mf + factor(surg), dd)
    b <- coef(fit); V <- vcov(fit)
    stopifnot(!anyNA(b))
    n <- fit$n; ev <- fit$nevent
    int_names <- grep("^trt:", names(b), value = TRUE)
    if (is_cat) {
      levs <- levels(dd$mf)
      for (l in levs) {
        L <- c(trt = 1)
        if (l != levs[1]) L[paste0("trt:mf", l)] <- 1
        lc <- lincomb(b, V, L)
        sub <- dd$mf == l
        rec("one-at-a-time", m, l, "HR", quantity = "subgroup", theta = lc[["theta"]],
            se = lc[["se"]], n = n, events = ev, n_subgroup = sum(sub),
            events_subgroup = sum(dd$status[sub]))
        if (l != levs[1]) {
          # second route: relevel so that l is the reference; exp(coef trt) is then HR in l
          dr <- dd; dr$mf <- relevel(dr$mf, ref = l)
          fr <- cox(Surv(time, status) ~ trt * mf + factor(surg), dr)
          check(sprintf("colon %s %s=%s subgroup HR by releveling", comp, m, l),
                c(lc[["theta"]], lc[["se"]]), c(coef(fr)[["trt"]], sqrt(vcov(fr)["trt", "trt"])),
                tol = 1e-6)
          nm <- paste0("trt:mf", l)
          rec("one-at-a-time", m, l, "HR", quantity = "interaction-effect", theta = b[[nm]],
              se = sqrt(V[nm, nm]), n = n, events = ev)
        } else {
          check(sprintf("colon %s %s ref-level subgroup HR = exp(coef trt)", comp, m),
                exp(lc[["theta"]]), exp(coef(fit)[["trt"]]))
        }
      }
    } else {
      for (a in colon_ages) {
        lc <- lincomb(b, V, c(trt = 1, "trt:mf" = a))
        rec("one-at-a-time", m, as.character(a), "HR", quantity = "conditional",
            theta = lc[["theta"]], se = lc[["se"]], n = n, value = a, events = ev)
      }
      rec("one-at-a-time", m, "per unit", "HR", quantity = "interaction-effect",
          theta = b[["trt:mf"]], se = sqrt(V["trt:mf", "trt:mf"]), n = n, events = ev)
    }
    w <- wald_stat(b[int_names], V[int_names, int_names])
    tst("one-at-a-time", m, "wald", w[["statistic"]], w[["df"]], n = n, events = ev)
    lr <- 2 * (fit$loglik[2] - red$loglik[2])
    check(sprintf("colon %s %s LR = anova()", comp, m), lr, anova(red, fit)$Chisq[2])
    tst("one-at-a-time", m, "lr", lr, length(int_names), n = n, events = ev)
  }

  # within-subgroup
  for (m in colon_cat) {
    dd <- d[complete.cases(d[, c("time", "status", "trt", m, "surg")]), ]
    for (l in sort(unique(dd[[m]]))) {
      ds <- dd[dd[[m]] == l, ]
      warn <- character(0)
      fit <- withCallingHandlers(cox(Surv(time, status) ~ trt + factor(surg), ds),
                                 warning = function(w) {
                                   warn <<- c(warn, conditionMessage(w))
                                   invokeRestart("muffleWarning")
                                 })
      rec("within-subgroup", m, as.character(l), "HR", quantity = "subgroup",
          theta = coef(fit)[["trt"]], se = sqrt(vcov(fit)["trt", "trt"]), n = fit$n,
          events = fit$nevent, n_subgroup = fit$n, events_subgroup = fit$nevent,
          note = if (length(warn)) paste(warn, collapse = "; ") else NA)
    }
  }

  # joint
  jv <- c("time", "status", "trt", colon_cat, "age", "surg")
  dj <- d[complete.cases(d[, jv]), ]
  for (m in colon_cat) dj[[paste0("f", m)]] <- factor(dj[[m]])
  terms_all <- c(paste0("f", colon_cat), "age")
  fj <- cox(as.formula(paste("Surv(time, status) ~ trt * (", paste(terms_all, collapse = " + "),
                             ") + factor(surg)")), dj)
  b <- coef(fj); V <- vcov(fj)
  stopifnot(!anyNA(b))
  for (m in c(colon_cat, "age")) {
    tm <- if (m == "age") "age" else paste0("f", m)
    int_names <- if (m == "age") "trt:age" else
      paste0("trt:", tm, levels(dj[[tm]])[-1])
    stopifnot(all(int_names %in% names(b)))
    for (nm in int_names) {
      lev <- if (m == "age") "per unit" else sub(paste0("trt:", tm), "", nm, fixed = TRUE)
      rec("joint", m, lev, "HR", quantity = "interaction-effect", theta = b[[nm]],
          se = sqrt(V[nm, nm]), n = fj$n, events = fj$nevent)
    }
    w <- wald_stat(b[int_names], V[int_names, int_names])
    tst("joint", m, "wald", w[["statistic"]], w[["df"]], n = fj$n, events = fj$nevent)
    others <- setdiff(terms_all, tm)
    fr <- cox(as.formula(paste("Surv(time, status) ~ trt * (", paste(others, collapse = " + "),
                               ") +", tm, "+ factor(surg)")), dj)
    stopifnot(length(coef(fr)) == length(b) - length(int_names))
    tst("joint", m, "lr", 2 * (fj$loglik[2] - fr$loglik[2]), length(int_names), n = fj$n,
        events = fj$nevent)
  }

  # overall
  da <- d[complete.cases(d[, c("time", "status", "trt", "surg")]), ]
  fa <- cox(Surv(time, status) ~ trt + factor(surg), da)
  rec("overall-adjusted", NA, NA, "HR", quantity = "overall", theta = coef(fa)[["trt"]],
      se = sqrt(vcov(fa)["trt", "trt"]), n = fa$n, events = fa$nevent)
  fu <- cox(Surv(time, status) ~ trt, da)
  rec("overall-unadjusted", NA, NA, "HR", quantity = "overall", theta = coef(fu)[["trt"]],
      se = sqrt(vcov(fu)["trt", "trt"]), n = fu$n, events = fu$nevent)
}

# ---------------------------------------------------------------------------------------------
# GLM / OLS standardization machinery (rossi, anorexia)
# ---------------------------------------------------------------------------------------------
CTL_GLM <- glm.control(epsilon = 1e-15, maxit = 500)
chk_conv <- function(fit) {
  stopifnot(fit$converged, !isTRUE(fit$boundary))
  fit
}
fit_model <- function(model, f, d) {
  switch(model,
         "ols" = lm(f, data = d),
         "modified-poisson" = chk_conv(glm(f, family = poisson(link = "log"), data = d,
                                           control = CTL_GLM)),
         "logit" = chk_conv(glm(f, family = binomial(link = "logit"), data = d,
                                control = CTL_GLM)))
}
vcov_model <- function(model, fit) {
  switch(model,
         "ols" = vcovHC(fit, type = "HC3"),
         "modified-poisson" = vcovHC(fit, type = "HC0"),
         "logit" = vcov(fit))
}
variance_name <- c("ols" = "HC3", "modified-poisson" = "HC0", "logit" = "model")
native_scale <- c("ols" = "RD", "modified-poisson" = "RR", "logit" = "OR")
model_scales <- list("ols" = c("RD", "RR"), "modified-poisson" = c("RD", "RR"),
                     "logit" = c("RD", "RR", "OR"))

# mean prediction over the rows nd with trt set to t, and its gradient in beta
std_mean <- function(fit, model, nd, t) {
  nd$trt <- t
  tt <- delete.response(terms(fit))
  X <- model.matrix(tt, model.frame(tt, nd, xlev = fit$xlevels))
  eta <- drop(X %*% coef(fit))
  if (model == "ols") { mu <- eta; dmu <- rep(1, length(eta)) }
  if (model == "modified-poisson") { mu <- exp(eta); dmu <- mu }
  if (model == "logit") { mu <- plogis(eta); dmu <- mu * (1 - mu) }
  list(mu = mean(mu), g = colMeans(dmu * X))
}
# theta (native: RD / log RR / log OR) and its gradient
std_effect <- function(fit, model, nd, scale) {
  s1 <- std_mean(fit, model, nd, 1); s0 <- std_mean(fit, model, nd, 0)
  m1 <- s1$mu; m0 <- s0$mu
  switch(scale,
         "RD" = , "MD" = list(theta = m1 - m0, g = s1$g - s0$g),
         "RR" = list(theta = log(m1 / m0), g = s1$g / m1 - s0$g / m0),
         "OR" = list(theta = qlogis(m1) - qlogis(m0),
                     g = s1$g / (m1 * (1 - m1)) - s0$g / (m0 * (1 - m0))))
}
se_of <- function(g, V) sqrt(drop(t(g) %*% V %*% g))

# numerical gradient check of the analytic delta method (once per model)
num_grad_check <- function(fit, model, nd, scale, label) {
  an <- std_effect(fit, model, nd, scale)
  b0 <- coef(fit)
  h <- 1e-6
  ng <- sapply(seq_along(b0), function(j) {
    f <- fit; bp <- b0; bm <- b0
    bp[j] <- bp[j] + h; bm[j] <- bm[j] - h
    f$coefficients <- bp; tp <- std_effect(f, model, nd, scale)$theta
    f$coefficients <- bm; tm <- std_effect(f, model, nd, scale)$theta
    (tp - tm) / (2 * h)
  })
  check(paste(label, "analytic gradient = numerical gradient"), an$g, ng, tol = 1e-6)
}

# ---------------------------------------------------------------------------------------------
# Case rossi
# ---------------------------------------------------------------------------------------------
rossi$trt <- rossi$fin
comp <- "1 vs 0"
age_q <- quantile(rossi$age, c(0.25, 0.5, 0.75), type = 7, names = FALSE)
age_cats <- list("< 25" = rossi$age < 25, ">= 25" = rossi$age >= 25)
n_r <- nrow(rossi)

for (model in c("ols", "modified-poisson", "logit")) {
  vn <- variance_name[[model]]
  rec <- function(...) add_record("rossi", comp, ..., model = model, variance = vn)
  tst <- function(...) add_test("rossi", comp, ..., model = model, variance = vn)
  scales <- model_scales[[model]]

  # one-at-a-time
  for (m in c("wexp", "mar", "age")) {
    dd <- rossi
    is_cat <- m != "age"
    dd$mf <- if (is_cat) factor(dd[[m]]) else dd[[m]]
    fit <- fit_model(model, arrest ~ trt * mf + prio, dd)
    b <- coef(fit); V <- vcov_model(model, fit)
    stopifnot(!anyNA(b))
    int_names <- grep("^trt:", names(b), value = TRUE)
    if (is_cat) {
      levs <- levels(dd$mf)
      for (sc in scales) {
        eff <- lapply(levs, function(l) std_effect(fit, model, dd[dd$mf == l, ], sc))
        names(eff) <- levs
        for (l in levs) {
          rec("one-at-a-time", m, l, sc, quantity = "subgroup", theta = eff[[l]]$theta,
              se = se_of(eff[[l]]$g, V), n = n_r, n_subgroup = sum(dd$mf == l))
          if (l != levs[1]) {
            rec("one-at-a-time", m, l, sc, quantity = "interaction-effect",
                theta = eff[[l]]$theta - eff[[levs[1]]]$theta,
                se = se_of(eff[[l]]$g - eff[[levs[1]]]$g, V), n = n_r)
          }
        }
      }
      if (m == "wexp") {
        num_grad_check(fit, model, dd[dd$mf == "1", ], tail(scales, 1),
                       sprintf("rossi %s wexp=1 %s", model, tail(scales, 1)))
        # second route: predict() on the data with trt set
        p1 <- predict(fit, transform(dd[dd$mf == "1", ], trt = 1), type = "response")
        p0 <- predict(fit, transform(dd[dd$mf == "1", ], trt = 0), type = "response")
        check(sprintf("rossi %s wexp=1 standardized RD via predict()", model),
              std_effect(fit, model, dd[dd$mf == "1", ], "RD")$theta, mean(p1) - mean(p0))
      }
    } else {
      nat <- native_scale[[model]]
      for (k in seq_along(age_q)) {
        nd <- data.frame(mf = age_q[k], prio = mean(dd$prio))
        e <- std_effect(fit, model, nd, nat)
        lc <- lincomb(b, V, c(trt = 1, "trt:mf" = age_q[k]))
        check(sprintf("rossi %s conditional at age q%d = linear combination", model,
                      c(25, 50, 75)[k]), c(e$theta, se_of(e$g, V)), lc)
        rec("one-at-a-time", m, c("q25", "q50", "q75")[k], nat, quantity = "conditional",
            theta = e$theta, se = se_of(e$g, V), n = n_r, value = age_q[k])
      }
      rec("one-at-a-time", m, "per unit", nat, quantity = "interaction-effect",
          theta = b[["trt:mf"]], se = sqrt(V["trt:mf", "trt:mf"]), n = n_r)
      for (cn in names(age_cats)) {
        for (sc in scales) {
          e <- std_effect(fit, model, dd[age_cats[[cn]], ], sc)
          rec("one-at-a-time", m, cn, sc, quantity = "category", theta = e$theta,
              se = se_of(e$g, V), n = n_r, n_subgroup = sum(age_cats[[cn]]))
        }
      }
    }
    w <- wald_stat(b[int_names], V[int_names, int_names])
    if (m == "wexp") {
      red0 <- fit_model(model, arrest ~ trt + mf + prio, dd)
      wt <- waldtest(red0, fit, vcov = V, test = "Chisq")
      check(sprintf("rossi %s wexp wald = lmtest::waldtest", model), w[["statistic"]],
            wt$Chisq[2])
    }
    tst("one-at-a-time", m, "wald", w[["statistic"]], w[["df"]], n = n_r)
    if (model == "logit") {
      red <- fit_model(model, arrest ~ trt + mf + prio, dd)
      lr <- 2 * as.numeric(logLik(fit) - logLik(red))
      check(sprintf("rossi logit %s LR = deviance difference", m), lr,
            deviance(red) - deviance(fit))
      tst("one-at-a-time", m, "lr", lr, length(int_names), n = n_r)
    }
  }

  # within-subgroup
  for (m in c("wexp", "mar")) {
    for (l in sort(unique(rossi[[m]]))) {
      ds <- rossi[rossi[[m]] == l, ]
      fit <- fit_model(model, arrest ~ trt + prio, ds)
      V <- vcov_model(model, fit)
      for (sc in scales) {
        e <- std_effect(fit, model, ds, sc)
        rec("within-subgroup", m, as.character(l), sc, quantity = "subgroup", theta = e$theta,
            se = se_of(e$g, V), n = nrow(ds), n_subgroup = nrow(ds))
      }
      if (model == "ols") {
        e <- std_effect(fit, model, ds, "RD")
        check(sprintf("rossi ols within %s=%s standardized RD = coefficient", m, l),
              c(e$theta, se_of(e$g, V)), c(coef(fit)[["trt"]], sqrt(V["trt", "trt"])))
      }
    }
  }

  # overall
  fa <- fit_model(model, arrest ~ trt + prio, rossi)
  Va <- vcov_model(model, fa)
  fu <- fit_model(model, arrest ~ trt, rossi)
  Vu <- vcov_model(model, fu)
  for (sc in scales) {
    e <- std_effect(fa, model, rossi, sc)
    rec("overall-adjusted", NA, NA, sc, quantity = "overall", theta = e$theta,
        se = se_of(e$g, Va), n = n_r)
    e <- std_effect(fu, model, rossi, sc)
    rec("overall-unadjusted", NA, NA, sc, quantity = "overall", theta = e$theta,
        se = se_of(e$g, Vu), n = n_r)
  }
  e <- std_effect(fu, model, rossi, native_scale[[model]])
  check(sprintf("rossi %s unadjusted standardized native effect = coefficient", model),
        c(e$theta, se_of(e$g, Vu)), c(coef(fu)[["trt"]], sqrt(Vu["trt", "trt"])))
  p1 <- mean(rossi$arrest[rossi$trt == 1]); p0 <- mean(rossi$arrest[rossi$trt == 0])
  check(sprintf("rossi %s unadjusted standardized RD = raw difference", model),
        std_effect(fu, model, rossi, "RD")$theta, p1 - p0)
}

# ---------------------------------------------------------------------------------------------
# Case anorexia
# ---------------------------------------------------------------------------------------------
for (active in c("CBT", "FT")) {
  comp <- paste(active, "vs Cont")
  d <- anorexia[anorexia$Treat %in% c("Cont", active), ]
  d$trt <- as.numeric(d$Treat == active)
  n_a <- nrow(d)
  rec <- function(...) add_record("anorexia", comp, ..., model = "ols", variance = "HC3")
  q <- quantile(d$Prewt, c(0.25, 0.5, 0.75), type = 7, names = FALSE)
  cats <- list("< 82" = d$Prewt < 82, ">= 82" = d$Prewt >= 82)

  fit <- lm(Postwt ~ trt * Prewt, data = d)
  b <- coef(fit); V <- vcovHC(fit, type = "HC3")
  for (k in seq_along(q)) {
    lc <- lincomb(b, V, c(trt = 1, "trt:Prewt" = q[k]))
    rec("one-at-a-time", "Prewt", c("q25", "q50", "q75")[k], "MD", quantity = "conditional",
        theta = lc[["theta"]], se = lc[["se"]], n = n_a, value = q[k])
  }
  rec("one-at-a-time", "Prewt", "per unit", "MD", quantity = "interaction-effect",
      theta = b[["trt:Prewt"]], se = sqrt(V["trt:Prewt", "trt:Prewt"]), n = n_a)
  for (cn in names(cats)) {
    e <- std_effect(fit, "ols", d[cats[[cn]], ], "MD")
    lc <- lincomb(b, V, c(trt = 1, "trt:Prewt" = mean(d$Prewt[cats[[cn]]])))
    check(sprintf("anorexia %s category %s MD = b_trt + mean(Prewt) b_int", comp, cn),
          c(e$theta, se_of(e$g, V)), lc)
    rec("one-at-a-time", "Prewt", cn, "MD", quantity = "category", theta = e$theta,
        se = se_of(e$g, V), n = n_a, n_subgroup = sum(cats[[cn]]))
  }
  w <- wald_stat(b["trt:Prewt"], V["trt:Prewt", "trt:Prewt", drop = FALSE])
  wt <- waldtest(lm(Postwt ~ trt + Prewt, data = d), fit, vcov = V, test = "Chisq")
  check(sprintf("anorexia %s wald = lmtest::waldtest", comp), w[["statistic"]], wt$Chisq[2])
  add_test("anorexia", comp, "one-at-a-time", "Prewt", "ols", "HC3", "wald", w[["statistic"]],
           w[["df"]], n = n_a)

  for (cn in names(cats)) {
    ds <- d[cats[[cn]], ]
    fs <- lm(Postwt ~ trt, data = ds)
    Vs <- vcovHC(fs, type = "HC3")
    rec("within-subgroup", "Prewt", cn, "MD", quantity = "subgroup", theta = coef(fs)[["trt"]],
        se = sqrt(Vs["trt", "trt"]), n = nrow(ds), n_subgroup = nrow(ds))
  }

  fa <- lm(Postwt ~ trt + Prewt, data = d)
  Va <- vcovHC(fa, type = "HC3")
  e <- std_effect(fa, "ols", d, "MD")
  check(sprintf("anorexia %s adjusted standardized MD = b_trt", comp),
        c(e$theta, se_of(e$g, Va)), c(coef(fa)[["trt"]], sqrt(Va["trt", "trt"])))
  rec("overall-adjusted", NA, NA, "MD", quantity = "overall", theta = e$theta,
      se = se_of(e$g, Va), n = n_a)
  fu <- lm(Postwt ~ trt, data = d)
  Vu <- vcovHC(fu, type = "HC3")
  check(sprintf("anorexia %s unadjusted MD = difference of means", comp), coef(fu)[["trt"]],
        mean(d$Postwt[d$trt == 1]) - mean(d$Postwt[d$trt == 0]))
  rec("overall-unadjusted", NA, NA, "MD", quantity = "overall", theta = coef(fu)[["trt"]],
      se = sqrt(Vu["trt", "trt"]), n = n_a)
}

# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
definitions <- list(
  ratio_scales = paste("HR, RR, OR and ratios of them: estimate on the ratio scale, std_error =",
                       "SE of the log ratio, CI = exp(log est +/- qnorm(0.975) se)."),
  difference_scales = "RD, MD: SE and CI on the difference scale.",
  interaction_effect = paste("Categorical modifier: level vs reference level from the same",
                             "one-at-a-time (or joint) model; RD: difference of standardized RDs,",
                             "RR/OR: ratio of standardized RRs/ORs, HR: exp(b_int). Continuous",
                             "modifier (level 'per unit'): the interaction coefficient on the",
                             "model's native scale (exponentiated for log/logit/Cox)."),
  standardized = paste("mu_t = mean over the subgroup rows of predict(type = 'response') with",
                       "trt = t; RD = mu1 - mu0, RR = mu1/mu0, OR = odds ratio; delta method with",
                       "the analytic gradient and the stated vcov."),
  conditional = paste("rossi/anorexia: native-scale effect at the type-7 quartile (value) of",
                      "the continuous modifier (rossi: prio at its mean); colon: HR at age 50,",
                      "60, 70."),
  variance = paste("colon: coxph model vcov (ties efron); rossi ols: vcovHC HC3,",
                   "modified-poisson: vcovHC HC0, logit: vcov(); anorexia: vcovHC HC3."),
  tests = paste("wald: b' V^-1 b over the treatment x modifier coefficients (stated vcov);",
                "lr: 2 (loglik full - loglik reduced), reduced = without those terms."),
  fitting = paste("coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15);",
                  "glm.control(epsilon = 1e-15, maxit = 500)."),
  complete_cases = "Rows with no NA in the variables of that model only.",
  counts = paste("n = rows in the fitted model; n_subgroup = rows in the subgroup/category;",
                 "events / events_subgroup likewise (Cox only).")
)

out <- list(
  generated_by = "tests/reference/strategies.R",
  r_version = R.version.string,
  packages = list(survival = as.character(packageVersion("survival")),
                  sandwich = as.character(packageVersion("sandwich")),
                  MASS = as.character(packageVersion("MASS")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  data = list(
    colon = list(file = "tests/reference/data/colon_death.csv",
                 source = "survival::colon, etype == 2", rows = nrow(colon)),
    rossi = list(file = "hte_report/_datasets/rossi.csv", rows = nrow(rossi)),
    anorexia = list(file = "tests/reference/data/anorexia.csv", source = "MASS::anorexia",
                    rows = nrow(anorexia))),
  definitions = definitions,
  records = records,
  tests = tests,
  checks = checks
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), na = "null", null = "null",
                  pretty = TRUE), out_file)
cat(sprintf("wrote %s: %d records, %d tests, %d checks passed\n", out_file, length(records),
            length(tests), length(checks)))
