# Independent R reference numbers for hte_report (treatment-effect heterogeneity).
#
# Regenerate from the repository root:
#     python tests/reference/make_data.py
#     Rscript tests/reference/core_glm.R
#
# Reads  tests/reference/data/{rossi,thornton_hiv,nsw,randhie}.csv
# Writes tests/reference/core_glm.json
#
# Needs R >= 4.2 with sandwich, jsonlite, epiR (splines and stats are base).
# Definitions are documented in tests/reference/README.md and repeated in the
# "definitions" entry of the JSON file.

suppressPackageStartupMessages({
  library(stats)
  library(splines)
  library(sandwich)
  library(jsonlite)
  library(epiR)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
data_dir <- file.path(ref_dir, "data")
out_file <- file.path(ref_dir, "core_glm.json")

Z <- qnorm(0.975)
CTRL <- glm.control(epsilon = 1e-15, maxit = 500)

# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
p_norm <- function(stat) 2 * pnorm(-abs(stat))

# estimate row on a difference scale
diff_row <- function(est, se) {
  stat <- est / se
  list(estimate = est, std_error = se, conf_low = est - Z * se,
       conf_high = est + Z * se, statistic = stat, p_value = p_norm(stat))
}
# estimate row on a ratio scale, given log(ratio) and its SE
ratio_row <- function(logest, se) {
  if (!is.finite(logest)) {
    return(list(estimate = NA_real_, std_error = NA_real_, conf_low = NA_real_,
                conf_high = NA_real_, statistic = NA_real_, p_value = NA_real_))
  }
  stat <- logest / se
  list(estimate = exp(logest), std_error = se, conf_low = exp(logest - Z * se),
       conf_high = exp(logest + Z * se), statistic = stat, p_value = p_norm(stat))
}
wald_chisq <- function(b, V) {
  W <- as.numeric(t(b) %*% solve(V, b))
  list(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}

model_family <- function(model) {
  switch(model,
         "ols" = gaussian(),
         "logit" = binomial(),
         "modified-poisson" = poisson(),
         "log-binomial" = binomial(link = "log"),
         "identity-binomial" = binomial(link = "identity"),
         "poisson" = poisson(),
         "identity-poisson" = poisson(link = "identity"),
         stop("unknown model ", model))
}
is_likelihood_model <- function(model) {
  model %in% c("logit", "log-binomial", "identity-binomial", "poisson", "identity-poisson")
}
# natural contrast of the conditional effect: "diff", "logratio" (RR / rate ratio) or "logodds"
natural_contrast <- function(model) {
  switch(model,
         "ols" = "diff", "identity-binomial" = "diff", "identity-poisson" = "diff",
         "modified-poisson" = "logratio", "log-binomial" = "logratio", "poisson" = "logratio",
         "logit" = "logodds")
}
scale_labels <- function(outcome_type) {
  switch(outcome_type,
         binary = list(diff = "RD", ratio = "RR"),
         continuous = list(diff = "MD", ratio = NA_character_),
         count = list(diff = "RateDiff", ratio = "RateRatio"))
}

# Fit a GLM on a design matrix; returns the fit or an error/non-convergence record.
try_glm <- function(y, Xf, fam, off, start) {
  warns <- character(0)
  fit <- tryCatch(
    withCallingHandlers(
      glm(y ~ 0 + Xf, family = fam, offset = off, start = start, control = CTRL),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      }),
    error = function(e) e)
  if (inherits(fit, "error")) {
    return(list(ok = FALSE, message = conditionMessage(fit), warnings = unique(warns)))
  }
  ok <- isTRUE(fit$converged) && !isTRUE(fit$boundary) && all(is.finite(coef(fit)))
  list(ok = ok, fit = fit, warnings = unique(warns),
       message = if (ok) NULL else sprintf("converged=%s boundary=%s; fitted range [%.6g, %.6g]; loglik %.10g",
                                           fit$converged, fit$boundary, min(fitted(fit)), max(fitted(fit)),
                                           as.numeric(logLik(fit))))
}

# Fit one of the models.  start_candidates: list of (label, start vector or NULL).
fit_model <- function(model, y, X, expo, start_candidates = list(list("default", NULL))) {
  if (model == "ols") {
    fit <- lm(y ~ 0 + X)
    return(list(ok = TRUE, fit = fit, start = "n/a (least squares)", attempts = list()))
  }
  fam <- model_family(model)
  off <- NULL
  Xf <- X
  if (model == "poisson" && !is.null(expo)) off <- log(expo)
  if (model == "identity-poisson" && !is.null(expo)) Xf <- X * expo
  attempts <- list()
  for (sc in start_candidates) {
    r <- try_glm(y, Xf, fam, off, sc[[2]])
    attempts[[length(attempts) + 1]] <- list(start = sc[[1]], ok = r$ok,
                                             message = r$message, warnings = r$warnings)
    if (r$ok) return(list(ok = TRUE, fit = r$fit, start = sc[[1]], attempts = attempts))
  }
  list(ok = FALSE, fit = NULL, start = NULL, attempts = attempts)
}

get_vcov <- function(fit, variance, cluster_vec) {
  if (variance == "model") return(vcov(fit))
  if (variance %in% c("HC0", "HC1", "HC2", "HC3")) return(sandwich::vcovHC(fit, type = variance))
  if (variance == "CL") return(sandwich::vcovCL(fit, cluster = cluster_vec, type = "HC1", cadjust = TRUE))
  stop("unknown variance ", variance)
}

variance_note <- function(variance, n, k, G) {
  switch(variance,
         "model" = "vcov(fit): lm sigma^2 (X'X)^-1 with sigma^2 = RSS/(n-k); glm with dispersion fixed at 1",
         "HC0" = "sandwich::vcovHC(fit, type='HC0'), no small-sample factor",
         "HC1" = sprintf("sandwich::vcovHC(fit, type='HC1') = HC0 * n/(n-k) = HC0 * %d/%d", n, n - k),
         "HC2" = "sandwich::vcovHC(fit, type='HC2'), residuals scaled by 1/(1-h_ii)^(1/2) (glm: weighted hat values)",
         "HC3" = "sandwich::vcovHC(fit, type='HC3'), residuals scaled by 1/(1-h_ii) (glm: weighted hat values)",
         "CL" = sprintf(paste0("sandwich::vcovCL(fit, cluster = villnum, type='HC1', cadjust=TRUE): ",
                               "uncorrected cluster sandwich * G/(G-1) * (n-1)/(n-k) with G=%d, n=%d, k=%d ",
                               "(factor %.17g)"), G, n, k, G / (G - 1) * (n - 1) / (n - k)))
}

# ---------------------------------------------------------------------------
# one case
# ---------------------------------------------------------------------------
run_case <- function(spec) {
  cat("== case", spec$case, "\n")
  path <- file.path(data_dir, spec$data)
  d_num <- read.csv(path)
  d_chr <- read.csv(path, colClasses = "character", na.strings = "")
  fml <- as.formula(spec$formula_r)
  outcome <- all.vars(fml)[1]
  tvar <- spec$treatment
  used_vars <- unique(c(all.vars(fml), spec$exposure, spec$cluster))
  cc <- complete.cases(d_num[, used_vars, drop = FALSE])
  d <- d_num[cc, , drop = FALSE]
  dc <- d_chr[cc, , drop = FALSE]
  rownames(d) <- NULL
  n <- nrow(d)
  cat("   n analysed =", n, "of", nrow(d_num), "\n")

  mf <- model.frame(fml, d)
  tt <- terms(mf)                       # carries predvars (spline knots)
  xlev <- .getXlevels(tt, mf)
  X_full <- model.matrix(tt, mf)
  y <- model.response(mf)
  expo <- if (is.null(spec$exposure)) NULL else d[[spec$exposure]]
  cl <- if (is.null(spec$cluster)) NULL else d[[spec$cluster]]
  G <- if (is.null(cl)) NA_integer_ else length(unique(cl))

  # aliased (non-estimable) columns are dropped from the design, as R's lm/glm do
  qx <- qr(X_full, tol = 1e-7)
  keep_idx <- sort(qx$pivot[seq_len(qx$rank)])
  aliased <- colnames(X_full)[-keep_idx]
  X <- X_full[, keep_idx, drop = FALSE]
  k <- ncol(X)
  if (length(aliased)) cat("   aliased columns dropped:", paste(aliased, collapse = ", "), "\n")

  # --- profile --------------------------------------------------------------
  ftxt <- paste(deparse(fml), collapse = " ")
  covars <- setdiff(all.vars(fml), c(outcome, tvar))
  kind <- sapply(covars, function(v) {
    wrapped <- grepl(paste0("factor\\(\\s*", v, "\\s*\\)"), ftxt)
    if (wrapped || length(unique(d[[v]])) <= 2) "categorical" else "continuous"
  })
  mode_of <- function(x) {               # most frequent value; ties -> smallest
    u <- sort(unique(x))
    u[which.max(tabulate(match(x, u), nbins = length(u)))]
  }
  profile <- lapply(covars, function(v) if (kind[[v]] == "continuous") mean(d[[v]]) else mode_of(d[[v]]))
  names(profile) <- covars

  # level strings exactly as in the CSV
  level_table <- function(v) {
    vals <- sort(unique(d[[v]]))
    strs <- dc[[v]][match(vals, d[[v]])]
    data.frame(value = vals, level = strs, stringsAsFactors = FALSE)
  }

  design <- function(newdata) {
    mfn <- model.frame(tt, newdata, xlev = xlev)
    model.matrix(tt, mfn)
  }
  # full-sample counterfactual designs (for standardization)
  d1 <- d; d1[[tvar]] <- 1
  d0 <- d; d0[[tvar]] <- 0
  X1_all <- design(d1); X0_all <- design(d0)
  stopifnot(identical(colnames(X1_all), colnames(X_full)))

  # modifiers: interaction columns
  fac <- attr(tt, "factors")
  tlabels <- attr(tt, "term.labels")
  assign_vec <- attr(X_full, "assign")
  mods <- spec$modifiers
  mod_info <- lapply(mods, function(m) {
    rows_m <- rownames(fac)[sapply(rownames(fac), function(r) m %in% all.vars(str2lang(r)))]
    row_t <- rownames(fac)[rownames(fac) == tvar]
    term_idx <- which(apply(fac, 2, function(col) {
      sum(col != 0) == 2 && col[row_t] != 0 && any(col[rows_m] != 0)
    }))
    cols_full <- which(assign_vec %in% term_idx)
    list(name = m, kind = kind[[m]], terms = tlabels[term_idx],
         cols_full = colnames(X_full)[cols_full])
  })
  names(mod_info) <- mods

  # subgroups for standardization
  subgroups <- list()
  for (m in mods) {
    if (kind[[m]] == "categorical") {
      lt <- level_table(m)
      for (i in seq_len(nrow(lt))) {
        subgroups[[length(subgroups) + 1]] <- list(modifier = m, level = lt$level[i], value = lt$value[i],
                                                   quarter = NULL, rows = which(d[[m]] == lt$value[i]))
      }
    } else {
      br <- quantile(d[[m]], c(0, .25, .5, .75, 1), type = 7, names = FALSE)
      if (any(duplicated(br))) stop("duplicated quartile breaks for ", m)
      q <- as.integer(cut(d[[m]], br, include.lowest = TRUE))
      for (j in 1:4) {
        subgroups[[length(subgroups) + 1]] <- list(modifier = m, level = NULL, value = NULL, quarter = j,
                                                   quarter_low = br[j], quarter_high = br[j + 1],
                                                   quarter_interval = if (j == 1) "[low, high]" else "(low, high]",
                                                   rows = which(q == j))
      }
    }
  }
  subgroups[[length(subgroups) + 1]] <- list(modifier = "(overall)", level = NULL, value = NULL,
                                             quarter = NULL, rows = seq_len(n))

  labels <- scale_labels(spec$outcome_type)

  # ------------------------------------------------------------------------
  # fits
  # ------------------------------------------------------------------------
  fitted_models <- list()
  get_fit <- function(model) {
    if (!is.null(fitted_models[[model]])) return(fitted_models[[model]])
    starts <- list(list("default", NULL))
    stopifnot(colnames(X)[1] == "(Intercept)")
    if (model == "log-binomial") {
      mp <- get_fit("modified-poisson")
      starts <- list(list("modified-poisson coefficients", unname(coef(mp$fit))),
                     list("default", NULL),
                     list("intercept = log(mean(y)), other coefficients 0", c(log(mean(y)), rep(0, k - 1))))
    }
    if (model == "identity-binomial") {
      ls <- unname(coef(lm(y ~ 0 + X)))
      starts <- list(list("default", NULL), list("least-squares coefficients", ls),
                     list("intercept = mean(y), other coefficients 0", c(mean(y), rep(0, k - 1))))
    }
    if (model == "identity-poisson") {
      Xt <- if (is.null(expo)) X else X * expo
      ls <- unname(coef(lm(y ~ 0 + Xt)))
      rate0 <- c(sum(y) / sum(if (is.null(expo)) rep(1, n) else expo), rep(0, k - 1))
      starts <- list(list("least-squares coefficients of y on exposure*X", ls),
                     list("intercept = overall rate, other coefficients 0", rate0))
    }
    r <- fit_model(model, y, X, expo, starts)
    fitted_models[[model]] <<- r
    r
  }

  lr_cache <- list()
  lr_tests <- function(model, full) {
    if (!is.null(lr_cache[[model]])) return(lr_cache[[model]])
    out <- lapply(mods, function(m) {
      drop <- which(colnames(X) %in% mod_info[[m]]$cols_full)
      Xr <- X[, -drop, drop = FALSE]
      bfull <- coef(full$fit)[-drop]
      starts <- list(list("full-model coefficients without the dropped columns", unname(bfull)),
                     list("default", NULL))
      if (model == "identity-poisson") {
        rate0 <- c(sum(y) / sum(if (is.null(expo)) rep(1, n) else expo), rep(0, ncol(Xr) - 1))
        starts[[2]] <- list("intercept = overall rate, other coefficients 0", rate0)
      }
      if (model == "log-binomial") {
        mpr <- fit_model("modified-poisson", y, Xr, expo)
        starts[[3]] <- list("modified-poisson coefficients", unname(coef(mpr$fit)))
      }
      red <- fit_model(model, y, Xr, expo, starts)
      if (!red$ok) {
        return(list(modifier = m, converged = FALSE, df = length(drop),
                    attempts = red$attempts))
      }
      st <- as.numeric(2 * (logLik(full$fit) - logLik(red$fit)))
      list(modifier = m, converged = TRUE, statistic = st, df = length(drop),
           p_value = pchisq(st, length(drop), lower.tail = FALSE),
           loglik_full = as.numeric(logLik(full$fit)), loglik_reduced = as.numeric(logLik(red$fit)),
           reduced_start = red$start)
    })
    lr_cache[[model]] <<- out
    out
  }

  fits_out <- list()
  sanity <- list()
  for (fs in spec$fits) {
    model <- fs$model
    for (variance in fs$variances) {
      cat("   fit", model, "x", variance, "\n")
      r <- get_fit(model)
      entry <- list(model = model, variance = variance)
      if (!r$ok) {
        entry$converged <- FALSE
        entry$attempts <- r$attempts
        fits_out[[length(fits_out) + 1]] <- entry
        cat("     -> did not converge\n")
        next
      }
      fit <- r$fit
      b <- unname(coef(fit))
      names(b) <- colnames(X)
      V <- get_vcov(fit, variance, cl)
      dimnames(V) <- list(colnames(X), colnames(X))
      se <- sqrt(diag(V))
      fam <- model_family(model)
      linkinv <- fam$linkinv
      mu_eta <- fam$mu.eta
      entry$converged <- TRUE
      entry$start <- r$start
      entry$variance_note <- variance_note(variance, n, k, G)
      entry$coefficients <- list(names = colnames(X), estimate = unname(b), std_error = unname(se))
      entry$aliased <- aliased
      entry$loglik <- as.numeric(logLik(fit))
      entry$iterations <- if (model == "ols") NA_integer_ else fit$iter
      if (model != "ols") {
        mu_fit <- fitted(fit)
        entry$fitted_range <- c(min(mu_fit), max(mu_fit))
      }

      # ---- conditional effects -----------------------------------------------------------
      contrast <- natural_contrast(model)
      cond_scale <- switch(contrast,
                           diff = if (model == "ols" && spec$outcome_type == "continuous") "MD" else labels$diff,
                           logratio = labels$ratio, logodds = "OR")
      cond <- list()
      for (m in mods) {
        if (kind[[m]] == "categorical") {
          lt <- level_table(m)
          pts <- lapply(seq_len(nrow(lt)), function(i) list(value = lt$value[i], level = lt$level[i], quantile = NULL))
        } else {
          qs <- quantile(d[[m]], c(.25, .5, .75), type = 7, names = FALSE)
          pts <- lapply(1:3, function(i) list(value = qs[i], level = NULL, quantile = c(.25, .5, .75)[i]))
        }
        for (p in pts) {
          nd <- as.data.frame(profile)
          nd[[m]] <- p$value
          nd[[outcome]] <- 0
          nd1 <- nd; nd1[[tvar]] <- 1
          nd0 <- nd; nd0[[tvar]] <- 0
          if (!is.null(spec$exposure)) { nd1[[spec$exposure]] <- 1; nd0[[spec$exposure]] <- 1 }
          x1f <- design(nd1); x0f <- design(nd0)
          estimable <- all(c(x1f[, aliased], x0f[, aliased]) == 0)
          x1 <- x1f[, colnames(X), drop = FALSE]; x0 <- x0f[, colnames(X), drop = FALSE]
          e1 <- sum(x1 * b); e0 <- sum(x0 * b)
          if (contrast == "diff") {
            g <- as.numeric(mu_eta(e1) * x1 - mu_eta(e0) * x0)
            row <- diff_row(linkinv(e1) - linkinv(e0), sqrt(as.numeric(t(g) %*% V %*% g)))
          } else {
            g <- as.numeric(x1 - x0)
            row <- ratio_row(e1 - e0, sqrt(as.numeric(t(g) %*% V %*% g)))
          }
          cond[[length(cond) + 1]] <- c(list(modifier = m, value = p$value, level = p$level,
                                             quantile = p$quantile, scale = cond_scale,
                                             mu1 = linkinv(e1), mu0 = linkinv(e0)),
                                        row, list(estimable = estimable))
        }
      }
      entry$conditional <- cond

      # ---- standardized effects ---------------------------------------------------------
      X1 <- X1_all[, colnames(X), drop = FALSE]
      X0 <- X0_all[, colnames(X), drop = FALSE]
      eta1 <- as.numeric(X1 %*% b); eta0 <- as.numeric(X0 %*% b)
      m1 <- linkinv(eta1); m0 <- linkinv(eta0)
      D1 <- mu_eta(eta1) * X1; D0 <- mu_eta(eta0) * X0
      std <- list()
      sg_store <- list()
      for (sg in subgroups) {
        rows <- sg$rows
        mu1 <- mean(m1[rows]); mu0 <- mean(m0[rows])
        g1 <- colMeans(D1[rows, , drop = FALSE]); g0 <- colMeans(D0[rows, , drop = FALSE])
        estimable <- if (length(aliased)) all(c(X1_all[rows, aliased], X0_all[rows, aliased]) == 0) else TRUE
        base <- list(modifier = sg$modifier, level = sg$level, quarter = sg$quarter)
        if (!is.null(sg$quarter)) {
          base$quarter_low <- sg$quarter_low; base$quarter_high <- sg$quarter_high
          base$quarter_interval <- sg$quarter_interval
        }
        base$n <- length(rows)
        gd <- g1 - g0
        std[[length(std) + 1]] <- c(base, list(scale = labels$diff, mu1 = mu1, mu0 = mu0),
                                    diff_row(mu1 - mu0, sqrt(as.numeric(t(gd) %*% V %*% gd))),
                                    list(estimable = estimable))
        gr <- g1 / mu1 - g0 / mu0
        lr_est <- if (mu1 > 0 && mu0 > 0) log(mu1 / mu0) else NA_real_
        if (!is.na(labels$ratio)) {
          std[[length(std) + 1]] <- c(base, list(scale = labels$ratio, mu1 = mu1, mu0 = mu0),
                                      ratio_row(lr_est, sqrt(as.numeric(t(gr) %*% V %*% gr))),
                                      list(estimable = estimable))
        }
        sg_store[[length(sg_store) + 1]] <- list(modifier = sg$modifier, n = length(rows), mu1 = mu1, mu0 = mu0,
                                                 diff = mu1 - mu0, gd = gd, logr = lr_est, gr = gr,
                                                 rows = rows, level = sg$level, estimable = estimable)
      }
      entry$standardized <- std

      # sanity (a): n-weighted average of subgroup differences equals the overall difference
      ov <- sg_store[[length(sg_store)]]
      for (m in mods) {
        sgm <- Filter(function(s) s$modifier == m, sg_store)
        nn <- sapply(sgm, `[[`, "n")
        wavg <- sum(nn * sapply(sgm, `[[`, "diff")) / sum(nn)
        sanity[[length(sanity) + 1]] <- list(check = "weighted_subgroup_difference_equals_overall",
                                             model = model, variance = variance, modifier = m,
                                             n_total = sum(nn), weighted_average = wavg, overall = ov$diff,
                                             abs_diff = abs(wavg - ov$diff))
      }
      # sanity (d): analytic delta-method gradient of the overall standardized difference
      # vs. a central finite-difference gradient
      fd <- sapply(seq_along(b), function(j) {
        h <- 1e-6 * max(1, abs(b[j]))
        bp <- b; bm <- b; bp[j] <- b[j] + h; bm[j] <- b[j] - h
        f <- function(bb) mean(linkinv(as.numeric(X1 %*% bb))) - mean(linkinv(as.numeric(X0 %*% bb)))
        (f(bp) - f(bm)) / (2 * h)
      })
      sanity[[length(sanity) + 1]] <- list(check = "overall_difference_gradient_analytic_vs_numeric",
                                           model = model, variance = variance,
                                           max_abs_diff = max(abs(fd - ov$gd)))

      # ---- Wald interaction tests ---------------------------------------------------------
      entry$wald <- lapply(mods, function(m) {
        idx <- which(colnames(X) %in% mod_info[[m]]$cols_full)
        w <- wald_chisq(b[idx], V[idx, idx, drop = FALSE])
        c(list(modifier = m, coefficients = colnames(X)[idx]), w)
      })

      # ---- LR interaction tests (likelihood models only; independent of variance) ---------
      entry$lr <- if (is_likelihood_model(model)) lr_tests(model, r) else list()

      # ---- equality of standardized subgroup effects (categorical modifiers) ---------------
      eq <- list()
      for (m in mods) {
        if (kind[[m]] != "categorical") next
        sgm_all <- Filter(function(s) s$modifier == m, sg_store)
        # subgroups whose effect depends on an aliased (dropped) column are not identified: excluded
        sgm <- Filter(function(s) s$estimable, sgm_all)
        excluded <- unlist(lapply(Filter(function(s) !s$estimable, sgm_all), `[[`, "level"))
        K <- length(sgm)
        C <- cbind(-1, diag(K - 1))
        for (sc in c("diff", "ratio")) {
          if (sc == "ratio" && is.na(labels$ratio)) next
          th <- sapply(sgm, function(s) if (sc == "diff") s$diff else s$logr)
          Gm <- t(sapply(sgm, function(s) if (sc == "diff") s$gd else s$gr))
          if (any(!is.finite(th))) {
            eq[[length(eq) + 1]] <- list(modifier = m, scale = labels[[sc]], statistic = NA_real_,
                                         df = K - 1, p_value = NA_real_, note = "ratio undefined (mu <= 0)")
            next
          }
          Sig <- Gm %*% V %*% t(Gm)
          w <- wald_chisq(as.numeric(C %*% th), C %*% Sig %*% t(C))
          eq[[length(eq) + 1]] <- c(list(modifier = m, scale = labels[[sc]]), w,
                                    list(levels_used = unlist(lapply(sgm, `[[`, "level")),
                                         levels_excluded = if (length(excluded)) excluded else list()))
        }
      }
      entry$equality <- eq

      # ---- RERI / AP / SI -----------------------------------------------------------------
      entry$reri <- list()
      if (!is.null(spec$reri) && !is.null(spec$reri[[model]]) && spec$reri[[model]]$variance == variance) {
        rs <- spec$reri[[model]]
        it <- match(c(rs$coef_t, rs$coef_m, rs$coef_tm), colnames(X))
        bt <- b[it[1]]; bm <- b[it[2]]; btm <- b[it[3]]
        Vs <- V[it, it]
        RR10 <- exp(bt); RR01 <- exp(bm); RR11 <- exp(bt + bm + btm)
        reri <- RR11 - RR10 - RR01 + 1
        g_reri <- c(RR11 - RR10, RR11 - RR01, RR11)
        ap <- reri / RR11
        g_ap <- c((RR01 - 1) / RR11, (RR10 - 1) / RR11, 1 - ap)
        si <- (RR11 - 1) / ((RR10 - 1) + (RR01 - 1))
        g_lsi <- c(RR11 / (RR11 - 1) - RR10 / (RR10 + RR01 - 2),
                   RR11 / (RR11 - 1) - RR01 / (RR10 + RR01 - 2),
                   RR11 / (RR11 - 1))
        qf <- function(g) sqrt(as.numeric(t(g) %*% Vs %*% g))
        s_reri <- qf(g_reri); s_ap <- qf(g_ap); s_lsi <- qf(g_lsi)
        lab <- rs$label
        own <- list(
          list(measure = paste0("RERI_", lab), method = "own delta method", estimate = reri, std_error = s_reri,
               conf_low = reri - Z * s_reri, conf_high = reri + Z * s_reri),
          list(measure = paste0("AP_", lab), method = "own delta method", estimate = ap, std_error = s_ap,
               conf_low = ap - Z * s_ap, conf_high = ap + Z * s_ap),
          list(measure = paste0("SI_", lab), method = "own delta method", estimate = si, std_error = s_lsi,
               std_error_scale = "log(SI)", conf_low = exp(log(si) - Z * s_lsi), conf_high = exp(log(si) + Z * s_lsi)),
          list(measure = paste0("RR10_", lab), method = "own", estimate = RR10),
          list(measure = paste0("RR01_", lab), method = "own", estimate = RR01),
          list(measure = paste0("RR11_", lab), method = "own", estimate = RR11))
        entry$reri <- own
        if (isTRUE(rs$epiR)) {
          # epiR on the same model fitted through the formula interface (model-based vcov)
          fam_f <- model_family(model)
          ff <- glm(fml, family = fam_f, data = d, control = CTRL)
          pos <- match(c(rs$coef_t, rs$coef_m, rs$coef_tm), names(coef(ff)))
          stopifnot(max(abs(coef(ff)[pos] - b[it])) < 1e-8)
          ei <- suppressWarnings(epiR::epi.interaction(model = ff, coef = pos, param = "product",
                                                       conf.level = 0.95))
          ep <- list(
            list(measure = paste0("RERI_", lab), method = "epiR::epi.interaction", coef_positions = pos,
                 estimate = ei$reri$est, conf_low = ei$reri$lower, conf_high = ei$reri$upper),
            list(measure = paste0("AP_", lab), method = "epiR::epi.interaction", coef_positions = pos,
                 estimate = ei$apab$est, conf_low = ei$apab$lower, conf_high = ei$apab$upper),
            list(measure = paste0("SI_", lab), method = "epiR::epi.interaction", coef_positions = pos,
                 estimate = ei$s$est, conf_low = ei$s$lower, conf_high = ei$s$upper))
          entry$reri <- c(own, ep)
          cmp <- c(reri - ei$reri$est, reri - Z * s_reri - ei$reri$lower, reri + Z * s_reri - ei$reri$upper,
                   ap - ei$apab$est, ap - Z * s_ap - ei$apab$lower, ap + Z * s_ap - ei$apab$upper,
                   si - ei$s$est, exp(log(si) - Z * s_lsi) - ei$s$lower, exp(log(si) + Z * s_lsi) - ei$s$upper)
          sanity[[length(sanity) + 1]] <- list(check = "reri_ap_si_own_vs_epiR", model = model, variance = variance,
                                               max_abs_diff = max(abs(cmp)))
        }
      }

      # sanity (c): vcovCL adjustment factor
      if (variance == "CL") {
        ef <- sandwich::estfun(fit)
        br <- sandwich::bread(fit)
        S <- rowsum(ef, cl)
        Vraw <- br %*% crossprod(S) %*% br / n^2
        fac_emp <- V / Vraw
        fac_theory <- G / (G - 1) * (n - 1) / (n - k)
        sanity[[length(sanity) + 1]] <- list(check = "vcovCL_adjustment_factor", model = model, variance = variance,
                                             G = G, n = n, k = k, factor_theory = fac_theory,
                                             factor_empirical_min = min(fac_emp), factor_empirical_max = max(fac_emp))
      }
      fits_out[[length(fits_out) + 1]] <- entry
    }
  }

  extra <- list()
  for (m in mods) {
    if (kind[[m]] == "continuous") {
      br <- quantile(d[[m]], c(0, .25, .5, .75, 1), type = 7, names = FALSE)
      extra[[m]] <- list(kind = "continuous", quartile_breaks = br,
                         conditional_values = quantile(d[[m]], c(.25, .5, .75), type = 7, names = FALSE))
    } else {
      lt <- level_table(m)
      extra[[m]] <- list(kind = "categorical", levels = lt$level, values = lt$value,
                         counts = sapply(lt$value, function(v) sum(d[[m]] == v)))
    }
    extra[[m]]$interaction_terms <- mod_info[[m]]$terms
    extra[[m]]$interaction_columns <- mod_info[[m]]$cols_full
  }
  # spline knots
  spl <- list()
  for (nm in names(mf)) {
    if (inherits(mf[[nm]], "bs")) {
      spl[[nm]] <- list(knots = as.numeric(attr(mf[[nm]], "knots")),
                        boundary_knots = as.numeric(attr(mf[[nm]], "Boundary.knots")),
                        degree = attr(mf[[nm]], "degree"), intercept = attr(mf[[nm]], "intercept"))
    }
  }

  list(case = spec$case, data = spec$data, formula_python = spec$formula_python,
       formula_r = spec$formula_r, outcome = outcome, outcome_type = spec$outcome_type,
       treatment = tvar, exposure = spec$exposure, cluster = spec$cluster,
       n_rows_in_file = nrow(d_num), n = n,
       n_clusters = if (is.null(cl)) NULL else G,
       aliased_columns = aliased,
       profile = profile, profile_kind = as.list(kind),
       modifiers = extra, splines = if (length(spl)) spl else NULL,
       fits = fits_out, sanity = sanity)
}

# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------
cases <- list(
  list(case = "rossi_binary", data = "rossi.csv",
       formula_python = "arrest ~ fin * (age + C(wexp) + prio) + race + mar + paro",
       formula_r = "arrest ~ fin * (age + factor(wexp) + prio) + race + mar + paro",
       outcome_type = "binary", treatment = "fin", exposure = NULL, cluster = NULL,
       modifiers = c("age", "wexp", "prio"),
       fits = list(list(model = "ols", variances = c("model", "HC0", "HC1", "HC2", "HC3")),
                   list(model = "logit", variances = c("model", "HC0", "HC3")),
                   list(model = "modified-poisson", variances = c("HC0", "HC3")),
                   list(model = "log-binomial", variances = c("model")),
                   list(model = "identity-binomial", variances = c("model")))),
  list(case = "rossi_reri", data = "rossi.csv",
       formula_python = "arrest ~ fin * C(wexp) + age + prio",
       formula_r = "arrest ~ fin * factor(wexp) + age + prio",
       outcome_type = "binary", treatment = "fin", exposure = NULL, cluster = NULL,
       modifiers = c("wexp"),
       fits = list(list(model = "logit", variances = c("model")),
                   list(model = "modified-poisson", variances = c("HC0"))),
       reri = list("logit" = list(variance = "model", label = "OR", epiR = TRUE,
                                  coef_t = "fin", coef_m = "factor(wexp)1", coef_tm = "fin:factor(wexp)1"),
                   "modified-poisson" = list(variance = "HC0", label = "RR", epiR = FALSE,
                                             coef_t = "fin", coef_m = "factor(wexp)1",
                                             coef_tm = "fin:factor(wexp)1"))),
  list(case = "hiv_cluster", data = "thornton_hiv.csv",
       formula_python = "got ~ any * (age + distvct)",
       formula_r = "got ~ any * (age + distvct)",
       outcome_type = "binary", treatment = "any", exposure = NULL, cluster = "villnum",
       modifiers = c("age", "distvct"),
       fits = list(list(model = "ols", variances = c("CL", "HC0")),
                   list(model = "logit", variances = c("model", "CL")),
                   list(model = "modified-poisson", variances = c("CL")))),
  list(case = "nsw_continuous", data = "nsw.csv",
       formula_python = "re78 ~ treat * (age + C(black) + nodegree) + educ + re75",
       formula_r = "re78 ~ treat * (age + factor(black) + nodegree) + educ + re75",
       outcome_type = "continuous", treatment = "treat", exposure = NULL, cluster = NULL,
       modifiers = c("age", "black", "nodegree"),
       fits = list(list(model = "ols", variances = c("model", "HC0", "HC1", "HC2", "HC3")))),
  list(case = "nsw_spline", data = "nsw.csv",
       formula_python = "re78 ~ treat * bs(age, df=3) + educ",
       formula_r = "re78 ~ treat * bs(age, df = 3) + educ",
       outcome_type = "continuous", treatment = "treat", exposure = NULL, cluster = NULL,
       modifiers = c("age"),
       fits = list(list(model = "ols", variances = c("HC3")))),
  list(case = "randhie_count", data = "randhie.csv",
       formula_python = "mdvis ~ free * (C(hlthg) + disea) + physlm",
       formula_r = "mdvis ~ free * (factor(hlthg) + disea) + physlm",
       outcome_type = "count", treatment = "free", exposure = NULL, cluster = NULL,
       modifiers = c("hlthg", "disea"),
       fits = list(list(model = "poisson", variances = c("model", "HC0")),
                   list(model = "identity-poisson", variances = c("model")))),
  list(case = "rossi_rate", data = "rossi.csv",
       formula_python = "arrest ~ fin * (age + C(wexp))  [exposure = week]",
       formula_r = "arrest ~ fin * (age + factor(wexp))  [poisson: + offset(log(week)); identity-poisson: mu = week * x'b]",
       outcome_type = "count", treatment = "fin", exposure = "week", cluster = NULL,
       modifiers = c("age", "wexp"),
       fits = list(list(model = "poisson", variances = c("model", "HC0")),
                   list(model = "identity-poisson", variances = c("model", "HC0"))))
)
# formula_r for rossi_rate carries a note; strip it before fitting
for (i in seq_along(cases)) cases[[i]]$formula_fit <- sub("\\s*\\[.*$", "", cases[[i]]$formula_r)

results <- lapply(cases, function(sp) {
  sp2 <- sp
  sp2$formula_r <- sp$formula_fit
  res <- run_case(sp2)
  res$formula_r <- sp$formula_r
  res
})

pkgs <- c("sandwich", "jsonlite", "epiR", "splines", "stats")
generated_by <- paste0("tests/reference/core_glm.R; ", R.version.string, "; ",
                       paste(sprintf("%s %s", pkgs, sapply(pkgs, function(p) as.character(packageVersion(p)))),
                             collapse = ", "))

definitions <- list(
  inference = "large-sample: z = qnorm(0.975) CIs, normal p-values 2*pnorm(-|z|), chi-square tests",
  ratio_scales = "estimate = ratio; std_error = SE of log(ratio); CI = exp(log(est) +/- z*se); statistic = log(est)/se",
  difference_scales = "est +/- z*se; statistic = est/se",
  glm_convergence = "glm.control(epsilon = 1e-15, maxit = 500); a fit counts as converged if glm reports converged, not boundary, finite coefficients",
  aliasing = "columns of the model matrix that are linearly dependent (qr, tol 1e-7) are dropped before fitting (R's NA-coefficient convention = coefficient fixed at 0). Rows with estimable=false depend on a dropped column (not identified); their numbers use the coefficient-0 convention.",
  profile = "covariates other than the focal modifier at their mean over analysed rows (numeric, > 2 distinct values) or mode (factor() or <= 2 distinct values; ties -> smallest)",
  conditional = "categorical modifier: each level; continuous modifier: quantile type 7 at 0.25/0.5/0.75. Per unit exposure. Natural contrast: ols/identity-* -> difference, log-link -> ratio, logit -> OR. Delta method with the fit's vcov.",
  standardized = "mean over subgroup rows of h(x_i(t)'b) for t = 1, 0, per unit exposure; difference and ratio (ratio omitted for continuous outcomes); continuous modifiers split with cut(x, quantile(x, 0:4/4), include.lowest=TRUE); delta method with covariates fixed",
  wald = "all t x modifier interaction coefficients, W = b'V^-1 b, df = number of coefficients",
  lr = "2*(logLik(full) - logLik(reduced)), reduced = full model matrix without the modifier's interaction columns; df = number of columns dropped; repeated identically in every fit of the same model",
  equality = "standardized subgroup estimates (difference or log ratio) of a categorical modifier, Sigma = G V G', all K-1 differences from the first level; subgroups with estimable=false (effect depends on an aliased column) are left out (levels_excluded)",
  reri = "Hosmer-Lemeshow 1992 via exp(coefficients) of t, m, t:m; SI std_error is on the log(SI) scale",
  identity_poisson = "glm(y ~ 0 + Xt, poisson(identity)), Xt = model matrix * exposure (exposure = 1 if none); start: least squares of y on Xt, fallback intercept = overall rate",
  log_binomial = "start: modified-poisson coefficients, fallbacks glm default, then intercept log(mean(y)) with other coefficients 0; a fit on the boundary (glm boundary=TRUE) counts as not converged",
  identity_binomial = "start: glm default, fallbacks least-squares coefficients, then intercept mean(y) with other coefficients 0; a fit on the boundary counts as not converged",
  vcovCL = "sandwich::vcovCL(type='HC1', cadjust=TRUE): factor G/(G-1) * (n-1)/(n-k)"
)

out <- list(generated_by = generated_by, definitions = definitions, cases = results)
# jsonlite caps numbers at 15 significant digits even with digits = NA, so doubles are
# pre-formatted with "%.17g" (exact round trip) and inserted verbatim.
full_precision <- function(x) {
  if (is.list(x)) {
    a <- attributes(x)
    y <- lapply(x, full_precision)
    attributes(y) <- a
    return(y)
  }
  if (is.double(x) && is.null(dim(x))) {
    s <- ifelse(is.finite(x), sprintf("%.17g", x), "null")
    out <- if (length(x) == 1) s else paste0("[", paste(s, collapse = ","), "]")
    return(structure(out, class = "json"))
  }
  x
}
jsonlite::write_json(full_precision(out), out_file, auto_unbox = TRUE, pretty = TRUE, json_verbatim = TRUE,
                     na = "null", null = "null")
cat("wrote", out_file, "\n")

# print sanity summary
for (cs in results) {
  for (s in cs$sanity) {
    val <- if (!is.null(s$abs_diff)) s$abs_diff else if (!is.null(s$max_abs_diff)) s$max_abs_diff else
      sprintf("theory %.12g, empirical [%.12g, %.12g]", s$factor_theory, s$factor_empirical_min, s$factor_empirical_max)
    cat(sprintf("%-15s %-50s %-18s %-6s %-9s %s\n", cs$case, s$check, s$model, s$variance,
                if (is.null(s$modifier)) "" else s$modifier, format(val, digits = 4)))
  }
}
