# Shared helpers of the tests/reference/unseen_*.R scripts: GLM working models of hte_report
# computed independently in R from design matrices (lm / glm, sandwich, closed-form delta
# method), written as tidy records that tests/test_reference_unseen.py matches to the package's
# frames. Sourced by the scripts; run them from the repository root.
#
# Conventions (those of the package, see README.md "What it estimates"):
#  - Working models: "ols" = lm; "modified-poisson" = glm(poisson(log)); "logit" =
#    glm(binomial); "poisson" = glm(poisson(log)) with offset log(exposure); "identity-poisson"
#    = glm(y ~ 0 + E * X, poisson(identity)) (mean = exposure * x'b). glm.control(epsilon =
#    1e-14, maxit = 200).
#  - Variances: "model" = vcov(fit) (dispersion 1 for glm); HCx = sandwich::vcovHC(type = x);
#    CL = sandwich::vcovCL(cluster, type = "HC1", cadjust = TRUE).
#  - Inference: z = qnorm(1 - (1 - level)/2), normal p-values and chi-square tests; "t" (ols
#    only): qt on the residual df n - k, F = W / q on (q, n - k).
#  - Standardized effect over rows S: mu_t = mean_S h(x_i(t)'b) per unit exposure (offset
#    left out), t = 1, 0; difference mu1 - mu0, ratio mu1 / mu0, OR odds(mu1) / odds(mu0)
#    (logit only); gradient mean_S h'(eta_i) x_i(t); SE of log ratios; Sigma = G V G'.
#  - Conditional effect: the same at one profile row (modifier at its level or value; other
#    continuous covariates at their mean and categorical ones at their mode over the analysis
#    rows).
#  - Quartiles: quantile(type = 7); quarters cut(x, quantile(x, 0:4/4), include.lowest = TRUE).
#  - Wald: b' V^-1 b over the treatment x modifier columns; LR: 2 (logLik full - reduced), the
#    reduced model without those columns (likelihood models with model variance only).
#  - Equality: the K - 1 differences of the standardized effects (RD, log RR, log OR) from the
#    first level; interaction effect of level l: theta_l - theta_ref with the joint gradient
#    (ratio scales exponentiated); per unit of a continuous modifier: the interaction
#    coefficient on the model's native scale.

suppressPackageStartupMessages({
  library(sandwich)
  library(jsonlite)
})

CTRL <- glm.control(epsilon = 1e-14, maxit = 200)

# R column names -> the package's (formulaic) term names
pyname <- function(x) {
  x <- gsub("factor\\(([A-Za-z0-9_.]+)\\)([A-Za-z0-9_.+-]+)", "C(\\1)[T.\\2]", x)
  x[x == "(Intercept)"] <- "Intercept"
  x
}

num <- function(x) if (length(x) == 0 || is.null(x)) NA else x

design <- function(tmpl, nd) {
  tt <- delete.response(terms(tmpl))
  mf <- model.frame(tt, nd, xlev = tmpl$xlevels, na.action = na.pass)
  model.matrix(tt, mf)
}

# fit: list(model, fit, b, V, X, y, expo, n, k, label, family, native, inference, df)
fit_glm <- function(model, fml, d, variance, expo = NULL, cluster = NULL, inference = "z") {
  tmpl <- lm(fml, d)
  X <- model.matrix(tmpl)
  y <- model.response(model.frame(tmpl))
  n <- nrow(X); k <- ncol(X)
  E <- if (is.null(expo)) rep(1, n) else d[[expo]]
  fam <- switch(model, "ols" = NULL, "modified-poisson" = poisson(), "logit" = binomial(),
                "poisson" = poisson(), "identity-poisson" = poisson(link = "identity"))
  if (model == "ols") {
    fit <- lm(y ~ 0 + X)
  } else if (model == "identity-poisson") {
    XE <- X * E
    # starts: least squares of y on E * X, else the overall rate with other coefficients 0
    starts <- list(unname(coef(lm(y ~ 0 + XE))), c(sum(y) / sum(E), rep(0, k - 1)))
    for (st in starts) {
      fit <- tryCatch(glm(y ~ 0 + XE, family = fam, start = st, control = CTRL),
                      error = function(e) NULL)
      if (!is.null(fit)) break
    }
  } else {
    off <- if (model == "poisson") log(E) else rep(0, n)
    fit <- glm(y ~ 0 + X, family = fam, offset = off, control = CTRL)
  }
  if (model != "ols") stopifnot(fit$converged, !fit$boundary)
  b <- coef(fit); names(b) <- colnames(X)
  V <- if (variance == "model") vcov(fit) else if (variance == "CL")
    sandwich::vcovCL(fit, cluster = d[[cluster]], type = "HC1", cadjust = TRUE) else
    sandwich::vcovHC(fit, type = variance)
  dimnames(V) <- list(colnames(X), colnames(X))
  label <- if (variance == "model") model else paste0(model, "-",
                                                     if (variance == "CL") paste0("CL(", cluster, ")") else variance)
  list(model = model, fit = fit, tmpl = tmpl, b = b, V = V, X = X, y = y, E = E, n = n, k = k,
       label = label, d = d, variance = variance,
       inference = if (model == "ols") inference else "z", df = n - k)
}

linkinv <- function(f, eta) switch(f$model, "ols" = eta, "identity-poisson" = eta,
                                    "logit" = plogis(eta), exp(eta))
dmu <- function(f, eta) switch(f$model, "ols" = 1 + 0 * eta, "identity-poisson" = 1 + 0 * eta,
                                "logit" = plogis(eta) * (1 - plogis(eta)), exp(eta))

crit <- function(f, level) if (f$inference == "t") qt(1 - (1 - level) / 2, f$df) else
  qnorm(1 - (1 - level) / 2)
pval <- function(f, z) if (f$inference == "t") 2 * pt(-abs(z), f$df) else 2 * pnorm(-abs(z))

# means under t = 1, 0 over rows (of X built from nd) with gradients
arm_means <- function(f, nd, trt, rows = NULL) {
  out <- list()
  for (t in c(1, 0)) {
    nt <- nd; nt[[trt]] <- t
    Xt <- design(f$tmpl, nt)
    if (!is.null(rows)) Xt <- Xt[rows, , drop = FALSE]
    eta <- drop(Xt %*% f$b)
    out[[as.character(t)]] <- list(mu = mean(linkinv(f, eta)),
                                   g = colMeans(dmu(f, eta) * Xt))
  }
  out
}

# theta and gradient of each scale from arm means
scales_of <- function(f, am, family) {
  m1 <- am[["1"]]$mu; m0 <- am[["0"]]$mu; g1 <- am[["1"]]$g; g0 <- am[["0"]]$g
  dn <- c(continuous = "MD", binary = "RD", count = "RateDiff")[[family]]
  rn <- c(binary = "RR", count = "RateRatio")
  out <- list()
  out[[dn]] <- list(theta = m1 - m0, g = g1 - g0, log = FALSE)
  if (family != "continuous")
    out[[rn[[family]]]] <- list(theta = log(m1 / m0), g = g1 / m1 - g0 / m0, log = TRUE)
  if (f$model == "logit")
    out[["OR"]] <- list(theta = qlogis(m1) - qlogis(m0),
                        g = g1 / (m1 * (1 - m1)) - g0 / (m0 * (1 - m0)), log = TRUE)
  out
}

effect_record <- function(f, s, level, V = f$V) {
  se <- sqrt(drop(t(s$g) %*% V %*% s$g))
  q <- crit(f, level)
  z <- s$theta / se
  tr <- if (s$log) exp else identity
  list(estimate = tr(s$theta), std_error = se, conf_low = tr(s$theta - q * se),
       conf_high = tr(s$theta + q * se), statistic = z, p_value = pval(f, z))
}

# standardized effects of one subgroup (rows), all scales
standardized <- function(f, trt, rows, family, level, base) {
  am <- arm_means(f, f$d, trt, rows)
  sc <- scales_of(f, am, family)
  dd <- f$d[rows, ]
  cnt <- list(n = length(rows), n_treated = sum(dd[[trt]] == 1), n_control = sum(dd[[trt]] == 0))
  if (family == "binary") {
    cnt$events_treated <- sum(dd[[trt]] == 1 & f$y[rows] == 1)
    cnt$events_control <- sum(dd[[trt]] == 0 & f$y[rows] == 1)
  }
  if (family == "count") {
    cnt$events_treated <- sum(f$y[rows][dd[[trt]] == 1])
    cnt$events_control <- sum(f$y[rows][dd[[trt]] == 0])
    cnt$exposure_treated <- sum(f$E[rows][dd[[trt]] == 1])
    cnt$exposure_control <- sum(f$E[rows][dd[[trt]] == 0])
  }
  lapply(names(sc), function(nm) c(base, list(scale = nm, model = f$label, method = "standardized",
                                              mu_treated = am[["1"]]$mu, mu_control = am[["0"]]$mu),
                                   cnt, effect_record(f, sc[[nm]], level)))
}

profile_row <- function(d, vars, factors) {
  nd <- d[1, vars, drop = FALSE]
  for (v in vars) {
    if (v %in% factors) {
      tb <- table(d[[v]])
      nd[[v]] <- type.convert(names(tb)[which.max(tb)], as.is = TRUE)
    } else nd[[v]] <- mean(d[[v]])
  }
  nd
}

conditional <- function(f, trt, nd, family, level, base) {
  am <- arm_means(f, nd, trt)
  sc <- scales_of(f, am, family)
  lapply(names(sc), function(nm) c(base, list(scale = nm, model = f$label, method = "conditional",
                                              mu_treated = am[["1"]]$mu, mu_control = am[["0"]]$mu),
                                   effect_record(f, sc[[nm]], level)))
}

wald <- function(f, cols) {
  b <- f$b[cols]; V <- f$V[cols, cols, drop = FALSE]
  W <- drop(t(b) %*% solve(V, b)); q <- length(cols)
  if (f$inference == "t")
    list(statistic = W / q, df = q, df_denominator = f$df,
         p_value = pf(W / q, q, f$df, lower.tail = FALSE), distribution = "F")
  else list(statistic = W, df = q, p_value = pchisq(W, q, lower.tail = FALSE),
            distribution = "chi-square")
}

lr <- function(f, cols) {
  keep <- setdiff(colnames(f$X), cols)
  Xr <- f$X[, keep, drop = FALSE]
  y <- f$y
  if (f$model == "identity-poisson") {
    XE <- Xr * f$E
    starts <- list(f$b[keep], unname(coef(lm(y ~ 0 + XE))), c(sum(y) / sum(f$E), rep(0, ncol(XE) - 1)))
    for (st in starts) {
      red <- tryCatch(glm(y ~ 0 + XE, family = poisson(link = "identity"), start = st,
                          control = CTRL), error = function(e) NULL)
      if (!is.null(red) && red$converged && !red$boundary) break
    }
    if (is.null(red) || !red$converged || red$boundary)
      return(list(statistic = NA, df = length(cols), p_value = NA, distribution = "chi-square",
                  note = "reduced model not fitted: no identity-link fit with positive rates"))
  } else {
    fam <- if (f$model == "logit") binomial() else poisson()
    off <- if (f$model == "poisson") log(f$E) else rep(0, f$n)
    red <- glm(y ~ 0 + Xr, family = fam, offset = off, control = CTRL)
  }
  stopifnot(red$converged)
  st <- as.numeric(2 * (logLik(f$fit) - logLik(red)))
  list(statistic = st, df = length(cols), p_value = pchisq(st, length(cols), lower.tail = FALSE),
       distribution = "chi-square")
}

# equality of standardized effects across level row sets; also the interaction effects
equality_and_contrasts <- function(f, trt, rowsets, levels, family, level, base) {
  per <- lapply(rowsets, function(r) scales_of(f, arm_means(f, f$d, trt, r), family))
  tests <- list(); ie <- list()
  names_ie <- c(RD = "difference of RDs", RR = "ratio of RRs", OR = "ratio of ORs",
                MD = "difference of MDs", RateDiff = "difference of rate differences",
                RateRatio = "ratio of rate ratios")
  for (nm in names(per[[1]])) {
    th <- sapply(per, function(p) p[[nm]]$theta)
    G <- t(sapply(per, function(p) p[[nm]]$g))
    D <- cbind(-1, diag(length(th) - 1))
    dth <- drop(D %*% th); S <- D %*% G %*% f$V %*% t(G) %*% t(D)
    W <- drop(t(dth) %*% solve(S, dth)); q <- length(dth)
    tst <- if (f$inference == "t")
      list(statistic = W / q, df = q, df_denominator = f$df,
           p_value = pf(W / q, q, f$df, lower.tail = FALSE), distribution = "F")
    else list(statistic = W, df = q, p_value = pchisq(W, q, lower.tail = FALSE),
              distribution = "chi-square")
    tests[[length(tests) + 1]] <- c(base, list(scale = nm, test = "equality", model = f$label), tst)
    for (j in 2:length(th)) {
      s <- list(theta = th[j] - th[1], g = G[j, ] - G[1, ], log = per[[1]][[nm]]$log)
      ie[[length(ie) + 1]] <- c(base, list(level = levels[j], reference = levels[1],
                                           scale = names_ie[[nm]], model = f$label,
                                           method = "standardized"),
                                effect_record(f, s, level))
    }
  }
  list(tests = tests, ie = ie)
}

coef_records <- function(f, level, base) {
  se <- sqrt(diag(f$V)); q <- crit(f, level); z <- f$b / se
  lapply(seq_along(f$b), function(j)
    c(base, list(model = f$label, term = pyname(names(f$b)[j]), estimate = unname(f$b[j]),
                 std_error = unname(se[j]), statistic = unname(z[j]), p_value = unname(pval(f, z[j])),
                 conf_low = unname(f$b[j] - q * se[j]), conf_high = unname(f$b[j] + q * se[j]))))
}

glance_record <- function(f, base) {
  ll <- as.numeric(logLik(f$fit))
  kk <- if (f$model == "ols") f$k + 1 else f$k
  if (f$model == "ols") {
    dev <- sum(residuals(f$fit)^2); nulldev <- sum((f$y - mean(f$y))^2)
  } else {
    dev <- deviance(f$fit)
    fam <- if (f$model == "logit") binomial() else poisson()
    off <- if (f$model %in% c("poisson", "identity-poisson")) log(f$E) else rep(0, f$n)
    nulldev <- deviance(glm(f$y ~ 1, family = fam, offset = off, control = CTRL))
  }
  c(base, list(model = f$label, n = f$n, df_residual = f$n - f$k, loglik = ll, deviance = dev,
               null_deviance = nulldev, aic = -2 * ll + 2 * kk, bic = -2 * ll + log(f$n) * kk))
}

vcov_record <- function(f, base) c(base, list(model = f$label, terms = pyname(colnames(f$X)),
                                             vcov = unname(f$V)))

# Hosmer-Lemeshow RERI / AP / SI and joint-exposure ratios from a log or logit model with a
# binary modifier m, at the profile `prof` (other covariates; in the joint model the other
# modifiers too): the log-scale contrasts L b of the profile rows (t, m) = (1, 0), (0, 1) and
# the interaction contrast x11 - x10 - x01 + x00 (with no other interaction: b_t, b_m, b_tm).
additive <- function(f, trt, m, levs, prof, level, suffix, base) {
  row <- function(t, l) { nd <- prof; nd[[trt]] <- t; nd[[m]] <- l; design(f$tmpl, nd)[1, ] }
  x00 <- row(0, levs[1]); x10 <- row(1, levs[1]); x01 <- row(0, levs[2]); x11 <- row(1, levs[2])
  L <- rbind(x10 - x00, x01 - x00, x11 - x10 - x01 + x00)
  b <- drop(L %*% f$b); V <- L %*% f$V %*% t(L)
  e10 <- exp(b[1]); e01 <- exp(b[2]); e11 <- exp(sum(b))
  q <- qnorm(1 - (1 - level) / 2)
  reri <- e11 - e10 - e01 + 1
  g_reri <- c(e11 - e10, e11 - e01, e11)
  ap <- reri / e11
  g_ap <- c(e11 - e10, e11 - e01, e11) / e11 - reri / e11 * c(1, 1, 1)
  # SI on the log scale
  # (d log|a| = da / a holds for a < 0 too: SI is estimable when both parts have one sign)
  lsi <- suppressWarnings(log((e11 - 1) / (e10 + e01 - 2)))
  g_si <- c(e11 / (e11 - 1) - e10 / (e10 + e01 - 2), e11 / (e11 - 1) - e01 / (e10 + e01 - 2),
            e11 / (e11 - 1))
  se <- function(g) sqrt(drop(t(g) %*% V %*% g))
  rec <- function(meas, est, s, lo, hi) c(base, list(measure = paste0(meas, "_", suffix),
                                                     model = f$label, estimate = unname(est), std_error = s,
                                                     conf_low = unname(lo), conf_high = unname(hi)))
  s1 <- se(g_reri); s2 <- se(g_ap); s3 <- se(g_si)
  add <- list(rec("RERI", reri, s1, reri - q * s1, reri + q * s1),
              rec("AP", ap, s2, ap - q * s2, ap + q * s2),
              rec("SI", exp(lsi), s3, exp(lsi - q * s3), exp(lsi + q * s3)))
  jg <- list(RR10 = c(1, 0, 0), RR01 = c(0, 1, 0), RR11 = c(1, 1, 1), multiplicative = c(0, 0, 1))
  joint <- lapply(names(jg), function(nm) {
    g <- jg[[nm]]; l <- sum(g * b); s <- se(g)
    rec(nm, exp(l), s, exp(l - q * s), exp(l + q * s))
  })
  list(additive = add, joint = joint)
}

write_reference <- function(out, file) {
  writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), na = "null", null = "null",
                    pretty = TRUE), file)
  cat("wrote", file, "\n")
}

# ---------------------------------------------------------------------------------------------
# One complete analysis as hte_report runs it: the primary overall analysis (treatment +
# adjustment), each modifier one at a time (treatment * modifier + adjustment, complete cases of
# that model's variables), and the joint model (treatment * every modifier + adjustment,
# complete cases over all), for each working model. modifiers / adjust: named character
# vectors, variable -> "factor" | "numeric".
term_of <- function(v, kind) if (kind == "factor") sprintf("factor(%s)", v) else v

run_analysis <- function(d, outcome, trt, modifiers, adjust, family, models, level = 0.95,
                         inference = "z", expo = NULL, cluster = NULL,
                         strategy = "one-at-a-time",
                         lr_models = c("logit", "poisson", "identity-poisson")) {
  R <- list(coefficients = list(), vcov = list(), glance = list(), subgroups = list(),
            overall = list(), tests = list(), interaction_effects = list(), additive = list(),
            joint_effects = list(), heterogeneity = list(), analyses = list(), profile = list())
  add <- function(key, recs) R[[key]] <<- c(R[[key]], recs)
  adj_terms <- mapply(term_of, names(adjust), adjust)
  extra <- c(expo, cluster)
  cc <- function(vars) d[stats::complete.cases(d[, unique(c(outcome, trt, vars, extra))]), ]
  rhs <- function(parts) paste(parts, collapse = " + ")
  factors_all <- c(names(modifiers)[modifiers == "factor"], names(adjust)[adjust == "factor"])

  one_model <- function(analysis, mname, fml, dd, mods, cfg, lev) {
    f <- fit_glm(cfg$model, fml, dd, cfg$variance, expo, cluster, inference)
    base <- list(analysis = analysis, modifier = mname)
    add("coefficients", coef_records(f, lev, base))
    add("vcov", list(vcov_record(f, base)))
    add("glance", list(glance_record(f, base)))
    f
  }

  # overall (primary) analysis
  dd <- cc(names(adjust))
  fml <- as.formula(sprintf("%s ~ %s", outcome, rhs(c(trt, adj_terms))))
  add("analyses", list(list(analysis = "overall-adjusted", modifier = "", n_analysed = nrow(dd),
                            n_excluded = nrow(d) - nrow(dd))))
  for (cfg in models) {
    f <- one_model("overall-adjusted", "", fml, dd, NULL, cfg, level)
    add("overall", standardized(f, trt, seq_len(nrow(dd)), family, level,
                                list(analysis = "overall-adjusted", modifier = "", level = "")))
  }

  modifier_records <- function(analysis, f, m, kind, dd, mods, lev) {
    base <- list(analysis = analysis, modifier = m)
    cols <- grep(sprintf("^%s:%s", trt, if (kind == "factor") sprintf("factor\\(%s\\)", m) else m),
                 colnames(f$X), value = TRUE)
    prof_vars <- setdiff(unique(c(names(mods), names(adjust))), m)
    prof <- profile_row(dd, prof_vars, factors_all)
    if (kind == "factor") {
      levs <- sort(unique(dd[[m]]))
      rowsets <- lapply(levs, function(l) which(dd[[m]] == l))
      for (j in seq_along(levs)) {
        b <- c(base, list(level = as.character(levs[j]), order = j - 1))
        add("subgroups", standardized(f, trt, rowsets[[j]], family, lev, b))
        nd <- prof; nd[[m]] <- levs[j]; nd[[trt]] <- 0
        add("subgroups", lapply(conditional(f, trt, nd, family, lev, b),
                                function(r) c(r, list(n = length(rowsets[[j]])))))
      }
      eq <- equality_and_contrasts(f, trt, rowsets, as.character(levs), family, lev, base)
      add("tests", eq$tests); add("interaction_effects", eq$ie)
      if (length(levs) == 2 && f$model %in% c("modified-poisson", "logit", "poisson")) {
        a <- additive(f, trt, m, levs, prof, lev, if (f$model == "logit") "OR" else "RR", base)
        add("additive", a$additive); add("joint_effects", a$joint)
      }
    } else {
      br <- quantile(dd[[m]], 0:4 / 4, type = 7)
      qq <- as.integer(cut(dd[[m]], br, include.lowest = TRUE))
      for (j in 1:4) add("subgroups", standardized(f, trt, which(qq == j), family, lev,
                                                   c(base, list(level = NULL, order = j - 1))))
      for (v in unique(unname(quantile(dd[[m]], c(.25, .5, .75), type = 7)))) {
        nd <- prof; nd[[m]] <- v; nd[[trt]] <- 0
        add("subgroups", conditional(f, trt, nd, family, lev, c(base, list(value = v))))
      }
      # per unit: the native scale of the model
      nat <- switch(f$model, "ols" = if (family == "continuous") "difference of MDs" else
        "difference of RDs", "identity-poisson" = "difference of rate differences",
        "logit" = "ratio of ORs", "modified-poisson" = "ratio of RRs", "poisson" = "ratio of rate ratios")
      s <- list(theta = f$b[[cols]], g = as.numeric(colnames(f$X) == cols),
                log = !(f$model %in% c("ols", "identity-poisson")))
      add("interaction_effects", list(c(base, list(level = "per unit", reference = "",
                                                   scale = nat, model = f$label, method = "coefficient"),
                                        effect_record(f, s, lev))))
    }
    native <- switch(f$model, "ols" = if (family == "continuous") "MD" else "RD",
                     "identity-poisson" = "RateDiff", "logit" = "OR", "modified-poisson" = "RR",
                     "poisson" = "RateRatio")
    add("tests", list(c(base, list(scale = native, test = "wald", model = f$label), wald(f, cols))))
    if (f$model %in% lr_models && f$variance == "model")
      add("tests", list(c(base, list(scale = native, test = "lr", model = f$label), lr(f, cols))))
    list(prof = prof)
  }

  # one at a time
  for (m in if (strategy == "one-at-a-time") names(modifiers) else character()) {
    kind <- modifiers[[m]]
    dd <- cc(c(m, names(adjust)))
    fml <- as.formula(sprintf("%s ~ %s", outcome,
                              rhs(c(trt, term_of(m, kind), sprintf("%s:%s", trt, term_of(m, kind)), adj_terms))))
    add("analyses", list(list(analysis = "one-at-a-time", modifier = m, n_analysed = nrow(dd),
                              n_excluded = nrow(d) - nrow(dd))))
    for (cfg in models) {
      f <- one_model("one-at-a-time", m, fml, dd, modifiers[m], cfg, level)
      modifier_records("one-at-a-time", f, m, kind, dd, modifiers[m], level)
    }
  }

  # joint model (also the source of the joint heterogeneity test of every strategy)
  dd <- cc(c(names(modifiers), names(adjust)))
  mt <- mapply(term_of, names(modifiers), modifiers)
  fml <- as.formula(sprintf("%s ~ %s * (%s)%s", outcome, trt, rhs(mt),
                            if (length(adj_terms)) paste(" +", rhs(adj_terms)) else ""))
  if (strategy == "joint")
    add("analyses", list(list(analysis = "joint", modifier = "", n_analysed = nrow(dd),
                              n_excluded = nrow(d) - nrow(dd))))
  for (cfg in models) {
    f <- one_model("joint", "", fml, dd, modifiers, cfg, level)
    cols <- grep(sprintf("^%s:", trt), colnames(f$X), value = TRUE)
    native <- switch(f$model, "ols" = if (family == "continuous") "MD" else "RD",
                     "identity-poisson" = "RateDiff", "logit" = "OR", "modified-poisson" = "RR",
                     "poisson" = "RateRatio")
    het <- list(c(list(scale = native, test = "wald", model = f$label, n = nrow(dd)), wald(f, cols)))
    if (f$model %in% lr_models && f$variance == "model")
      het <- c(het, list(c(list(scale = native, test = "lr", model = f$label, n = nrow(dd)), lr(f, cols))))
    add("heterogeneity", het)
    if (strategy == "joint")
      for (m in names(modifiers)) modifier_records("joint", f, m, modifiers[[m]], dd, modifiers, level)
  }
  # profile of the joint analysis (every modifier and adjustment covariate)
  prof <- profile_row(dd, unique(c(names(modifiers), names(adjust))), factors_all)
  if (strategy == "joint") R$profile <- lapply(names(prof), function(v) list(analysis = "joint", variable = v, value = prof[[v]]))

  # Holm across modifiers within (analysis, model, scale, test)
  key <- sapply(R$tests, function(t) paste(t$analysis, t$model, t$scale, t$test))
  for (k in unique(key)) {
    idx <- which(key == k)
    adj <- p.adjust(sapply(R$tests[idx], `[[`, "p_value"), "holm")
    for (j in seq_along(idx)) R$tests[[idx[j]]]$p_adjusted <- adj[j]
  }
  R
}
