# Repeated measures (fit_mixed: linear mixed model and GEE) checked against R on HSAUR3::BtheB
# (Beat the Blues: 100 depressed patients randomized to computerized CBT "BtheB" or treatment
# as usual; Beck Depression Inventory at 2, 3, 5 and 8 months, with dropout: 120 of 400 visits
# missing). No other reference test uses these data. Checked by tests/test_reference_unseen2.py.
#
# Regenerate from the repository root: Rscript tests/reference/unseen2_btheb.R
#   writes tests/reference/data/unseen2_btheb.csv (long format: id, treat = BtheB, drug (No /
#   Yes: antidepressants), length (lt6m / ge6m: current episode), bdi_pre, month, bdi; missing
#   bdi left empty) and tests/reference/unseen2_btheb.json. Needs HSAUR3 (Debian
#   r-cran-hsaur3), lme4, geepack, jsonlite.
#
# Package calls: fit_mixed("bdi ~ treat * month * (C(drug) + C(length)) + bdi_pre", d,
#   treatment="treat", time="month", group="id", models=("lmm", "gee"), **call):
#   "slope_reml": estimand="slope", method="reml", random="slope";
#   "landmark_ml": estimand="landmark", landmark=8, method="ml", random="intercept".
#
# Per analysis (primary bdi ~ treat * month + bdi_pre; per modifier m bdi ~ treat * month *
# factor(m) + bdi_pre), on the visits with bdi observed:
#  - lmer(... + (1 + month | id) or (1 | id), REML or ML), tight nloptwrap tolerances, vcov(fit);
#    geeglm(gaussian, id = id, corstr = "exchangeable", epsilon = 1e-13), robust vcov.
#  - slope effect: L = x(1, 1) - x(0, 1) - x(1, 0) + x(0, 0); landmark effect at 8 months:
#    L = x(1, 8) - x(0, 8); x from model.matrix of each patient's row, L averaged over the
#    patients of a level (overall: all analysed patients); SE sqrt(L V L'); z intervals.
#  - Wald: the treat:month:m coefficients (slope); for the landmark estimand the K - 1
#    contrasts of the landmark effects between levels (the hypothesis that the effect at 8
#    months does not depend on m; for a factor the same as the equality test); equality (K - 1
#    differences) and the level-vs-reference interaction effect.
source("tests/reference/unseen2_common.R")
suppressPackageStartupMessages({library(lme4); library(geepack); library(HSAUR3)})

data("BtheB", package = "HSAUR3")
b <- BtheB; b$id <- seq_len(nrow(b))
times <- c(2, 3, 5, 8); cols <- c("bdi.2m", "bdi.3m", "bdi.5m", "bdi.8m")
long <- do.call(rbind, lapply(seq_along(times), function(j) data.frame(
  id = b$id, treat = as.integer(b$treatment == "BtheB"), drug = as.character(b$drug),
  length = ifelse(b$length == "<6m", "lt6m", "ge6m"), bdi_pre = b$bdi.pre, month = times[j],
  bdi = b[[cols[j]]])))
long <- long[order(long$id, long$month), ]
write.csv(long, "tests/reference/data/unseen2_btheb.csv", row.names = FALSE, na = "")
D <- read.csv("tests/reference/data/unseen2_btheb.csv", stringsAsFactors = FALSE)
D <- D[!is.na(D$bdi), ]
CTRL <- lmerControl(optimizer = "nloptwrap", calc.derivs = FALSE,
                    optCtrl = list(xtol_rel = 1e-14, ftol_rel = 1e-16, ftol_abs = 1e-16,
                                   maxeval = 1e5))

run_call <- function(estimand, reml, random) {
  LM <- 8
  recs <- list(); tests <- list(); effects <- list(); fits <- list()
  re <- if (random == "slope") "(1 + month | id)" else "(1 | id)"
  for (m in list(NULL, "drug", "length")) {
    rhs <- if (is.null(m)) "treat * month + bdi_pre" else sprintf("treat * month * factor(%s) + bdi_pre", m)
    f_fix <- as.formula(paste("bdi ~", rhs))
    lm_fit <- lmer(as.formula(paste("bdi ~", rhs, "+", re)), data = D, REML = reml, control = CTRL)
    gee_fit <- geeglm(f_fix, id = id, data = D, family = gaussian, corstr = "exchangeable",
                      control = geese.control(epsilon = 1e-13, maxit = 500))
    tt <- delete.response(terms(f_fix))
    X_at <- function(nd, t, s) { nd$treat <- t; nd$month <- s; model.matrix(tt, model.frame(tt, nd)) }
    pts <- D[!duplicated(D$id), ]
    Lrow <- function(nd) if (estimand == "slope")
      X_at(nd, 1, 1) - X_at(nd, 0, 1) - X_at(nd, 1, 0) + X_at(nd, 0, 0) else X_at(nd, 1, LM) - X_at(nd, 0, LM)
    Lp <- Lrow(pts)
    scale <- if (estimand == "slope") "SlopeDiff" else "MD"
    for (mod in list(list(lm_fit, fixef(lm_fit), as.matrix(vcov(lm_fit)), "lmm"),
                     list(gee_fit, coef(gee_fit), gee_fit$geese$vbeta, "gee"))) {
      bb <- mod[[2]]; V <- mod[[3]]; stopifnot(identical(names(bb), colnames(Lp)))
      if (is.null(m)) {
        L <- colMeans(Lp)
        recs[[length(recs) + 1]] <- c(list(analysis = "overall-adjusted", modifier = "All patients",
          level = "", scale = scale, model = mod[[4]], n = nrow(pts), n_obs = nrow(D)),
          diff_vals(sum(L * bb), sqrt(as.numeric(t(L) %*% V %*% L))))
        next
      }
      levs <- sort(unique(pts[[m]]))
      Ls <- t(sapply(levs, function(l) colMeans(Lp[pts[[m]] == l, , drop = FALSE])))
      est <- as.vector(Ls %*% bb); C <- Ls %*% V %*% t(Ls)
      for (i in seq_along(levs))
        recs[[length(recs) + 1]] <- c(list(analysis = "one-at-a-time", modifier = m, level = levs[i],
          scale = scale, model = mod[[4]], n = sum(pts[[m]] == levs[i]), n_obs = sum(D[[m]] == levs[i])),
          diff_vals(est[i], sqrt(C[i, i])))
      K <- length(levs); Cm <- cbind(-1, diag(K - 1))
      tests[[length(tests) + 1]] <- c(list(modifier = m, scale = scale, model = mod[[4]], test = "equality"),
                                      wald(Cm %*% est, Cm %*% C %*% t(Cm)))
      if (estimand == "slope") {
        int <- grep(sprintf("^treat:month:factor\\(%s\\)", m), names(bb))
        w <- wald(bb[int], V[int, int, drop = FALSE])
      } else {  # the landmark effect at 8 months equal across levels: its K - 1 contrasts
        D8 <- Ls[-1, , drop = FALSE] - matrix(Ls[1, ], K - 1, ncol(Ls), byrow = TRUE)
        w <- wald(D8 %*% bb, D8 %*% V %*% t(D8))
      }
      tests[[length(tests) + 1]] <- c(list(modifier = m, scale = scale, model = mod[[4]], test = "wald"), w)
      for (i in 2:K) {
        g <- Ls[i, ] - Ls[1, ]
        effects[[length(effects) + 1]] <- c(list(modifier = m, level = levs[i], reference = levs[1],
          model = mod[[4]]), diff_vals(sum(g * bb), sqrt(as.numeric(t(g) %*% V %*% g))))
      }
      fits[[length(fits) + 1]] <- list(modifier = m, model = mod[[4]],
        loglik = if (mod[[4]] == "lmm") as.numeric(logLik(lm_fit)) else NA)
    }
  }
  kw <- list(estimand = estimand, method = if (reml) "reml" else "ml", random = random)
  if (estimand == "landmark") kw$landmark <- LM
  list(kwargs = kw, records = recs, tests = tests, interaction_effects = effects, fits = fits)
}

out <- list(
  generated_by = sprintf("tests/reference/unseen2_btheb.R; %s; lme4 %s; geepack %s",
                         R.version.string, packageVersion("lme4"), packageVersion("geepack")),
  formula = "bdi ~ treat * month * (C(drug) + C(length)) + bdi_pre",
  calls = list(slope_reml = run_call("slope", TRUE, "slope"),
               landmark_ml = run_call("landmark", FALSE, "intercept")))
write_reference(out, "tests/reference/unseen2_btheb.json")
