# Independent R reference numbers for the repeated-measures analyses of hte_report (issue 15):
# fit_mixed's one-at-a-time and joint strategies, the slope and landmark estimands, the
# standardized subgroup effects, interaction effects, GEE with an independence working
# correlation and the fitted mean trajectories.
#
# Regenerate from the repository root:
#     Rscript tests/reference/mixed_plan.R
#
# Reads tests/reference/data/pbcseq.csv (written by mixed.R from survival::pbcseq: the Mayo
# Clinic PBC trial, D-penicillamine vs placebo, log bilirubin at follow-up visits, time in years).
# Needs R >= 4.2 with lme4, geepack and jsonlite.
# Definitions (also in the "definitions" entry of the JSON):
#  - x(t, s): model.matrix row of a patient's baseline covariates with trt = t, years = s.
#  - Slope effect row D = x(1,1) - x(0,1) - x(1,0) + x(0,0); landmark effect row (L = 2 years)
#    D = x(1,2) - x(0,2). Estimate D b, SE sqrt(D V D'), z intervals; V = vcov(lmer) / geeglm.
#  - Subgroup effect of a level of a categorical modifier: D averaged over the patients of the
#    level (standardized). Continuous modifier: D at the type-7 quartile over patients, other
#    covariates at the reference profile (mean / most frequent level).
#  - Overall: the primary model logbili ~ trt * years (same random effects), D averaged over all
#    patients.
#  - Interaction effects: differences of the level effects from the first level (SE from their
#    joint covariance); per unit of age: D(age + 1) - D(age).
#  - Tests: slope: Wald of the trt:years:m coefficients; landmark: Wald of the differences of
#    D over the levels (categorical) or b[trt:age] + 2 b[trt:years:age] (age); equality: K-1
#    differences of the level effects at the reference profile.
#  - Trajectory: mean of x(t, s) over all patients times b, SE sqrt(a V a'), primary model.

suppressPackageStartupMessages({
  library(lme4)
  library(geepack)
  library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
Z <- qnorm(0.975)
d <- read.csv(file.path(ref_dir, "data", "pbcseq.csv"), stringsAsFactors = FALSE)
d$stagegrp <- factor(d$stagegrp)
base <- d[!duplicated(d$id), ]
mode_of <- function(x) { tab <- table(x); sort(names(tab)[tab == max(tab)])[1] }
ctrl <- lmerControl(optimizer = "nloptwrap", calc.derivs = FALSE,
                    optCtrl = list(xtol_rel = 1e-14, ftol_rel = 1e-16, ftol_abs = 1e-16,
                                   xtol_abs = 1e-14, maxeval = 1e5))
row_of <- function(est, se) {
  stat <- est / se
  list(estimate = est, std_error = se, conf_low = est - Z * se, conf_high = est + Z * se,
       statistic = stat, p_value = 2 * pnorm(-abs(stat)))
}
wald <- function(b, V) {
  W <- as.numeric(t(b) %*% solve(V, b))
  list(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}

fit_one <- function(rhs, model, corstr = "exchangeable") {
  f <- as.formula(paste("logbili ~", rhs))
  if (model == "lmm") {
    fit <- lmer(update(f, . ~ . + (1 + years | id)), data = d, REML = TRUE, control = ctrl)
    b <- fixef(fit); V <- as.matrix(vcov(fit)); X <- getME(fit, "X")
  } else {
    fit <- geeglm(f, id = id, data = d, family = gaussian, corstr = corstr,
                  control = geese.control(epsilon = 1e-13, maxit = 500))
    b <- coef(fit); V <- as.matrix(vcov(fit)); X <- model.matrix(fit)
  }
  tt <- delete.response(terms(f))
  asg <- split(seq_len(ncol(X)), attr(X, "assign"))
  names(asg) <- c("(Intercept)", attr(tt, "term.labels"))[as.integer(names(asg)) + 1]
  xmat <- function(nd) {
    nd$stagegrp <- factor(as.character(nd$stagegrp), levels = levels(d$stagegrp))
    model.matrix(tt, model.frame(tt, nd))
  }
  list(b = b, V = V, xmat = xmat, asg = asg)
}

Drow <- function(m, nd, estimand) {
  g <- function(t, y) { n <- nd; n$trt <- t; n$years <- y; m$xmat(n) }
  if (estimand == "slope") g(1, 1) - g(0, 1) - g(1, 0) + g(0, 0) else g(1, 2) - g(0, 2)
}
profile_nd <- function() data.frame(stagegrp = mode_of(base$stagegrp), age = mean(base$age),
                                    trt = 0, years = 0, stringsAsFactors = FALSE)

analysis <- function(rhs, mods, estimand, model = "lmm", corstr = "exchangeable") {
  m <- fit_one(rhs, model, corstr)
  b <- m$b; V <- m$V
  D <- Drow(m, base, estimand)
  rows <- list(); ie <- list(); tests <- list()
  if ("stagegrp" %in% mods) {
    levs <- levels(d$stagegrp)
    L <- t(sapply(levs, function(lv) colMeans(D[base$stagegrp == lv, , drop = FALSE])))
    est <- drop(L %*% b); C <- L %*% V %*% t(L)
    for (i in seq_along(levs)) {
      rows[[length(rows) + 1]] <- c(row_of(est[i], sqrt(C[i, i])),
                                    list(modifier = "stagegrp", level = levs[i],
                                         n = sum(base$stagegrp == levs[i]),
                                         n_obs = sum(d$stagegrp == levs[i])))
    }
    for (i in 2:length(levs)) {
      ie[[length(ie) + 1]] <- c(row_of(est[i] - est[1], sqrt(C[i, i] + C[1, 1] - 2 * C[1, i])),
                                list(modifier = "stagegrp", level = levs[i], reference = levs[1]))
    }
    P <- t(sapply(levs, function(lv) { nd <- profile_nd(); nd$stagegrp <- lv; Drow(m, nd, estimand) }))
    K <- cbind(-1, diag(length(levs) - 1))
    eq <- wald(K %*% P %*% b, K %*% P %*% V %*% t(P) %*% t(K))
    tests[[length(tests) + 1]] <- c(list(modifier = "stagegrp", test = "equality"), eq)
    if (estimand == "slope") {
      idx <- m$asg[["trt:years:stagegrp"]]
      tests[[length(tests) + 1]] <- c(list(modifier = "stagegrp", test = "wald"),
                                      wald(b[idx], V[idx, idx, drop = FALSE]))
    } else {
      tests[[length(tests) + 1]] <- c(list(modifier = "stagegrp", test = "wald"), eq)
    }
  }
  if ("age" %in% mods) {
    for (v in unname(quantile(base$age, c(.25, .5, .75), type = 7))) {
      nd <- profile_nd(); nd$age <- v
      L <- Drow(m, nd, estimand)
      rows[[length(rows) + 1]] <- c(row_of(sum(L * b), sqrt(drop(L %*% V %*% t(L)))),
                                    list(modifier = "age", value = v))
    }
    nd0 <- profile_nd(); nd1 <- nd0; nd1$age <- nd0$age + 1
    L <- Drow(m, nd1, estimand) - Drow(m, nd0, estimand)
    ie[[length(ie) + 1]] <- c(row_of(sum(L * b), sqrt(drop(L %*% V %*% t(L)))),
                              list(modifier = "age", level = "per unit", reference = ""))
    if (estimand == "slope") {
      idx <- m$asg[["trt:years:age"]]
    } else {
      idx <- c(m$asg[["trt:age"]], m$asg[["trt:years:age"]])
    }
    w <- if (estimand == "slope") wald(b[idx], V[idx, idx, drop = FALSE]) else {
      k <- c(1, 2); wald(sum(k * b[idx]), drop(t(k) %*% V[idx, idx] %*% k)) }
    tests[[length(tests) + 1]] <- c(list(modifier = "age", test = "wald"), w)
  }
  list(rhs = rhs, estimand = estimand, model = model, corstr = corstr, rows = rows,
       interaction_effects = ie, tests = tests)
}

overall <- function(estimand, model = "lmm", corstr = "exchangeable") {
  m <- fit_one("trt * years", model, corstr)
  Lbar <- colMeans(Drow(m, base, estimand))
  traj <- list()
  for (arm in c(0, 1)) for (s in c(0, 5, 10)) {
    nb <- base; nb$trt <- arm; nb$years <- s
    a <- colMeans(m$xmat(nb))
    traj[[length(traj) + 1]] <- list(arm = arm, time = s, mean = sum(a * m$b),
                                     std_error = sqrt(drop(a %*% m$V %*% a)))
  }
  c(row_of(sum(Lbar * m$b), sqrt(drop(Lbar %*% m$V %*% Lbar))),
    list(estimand = estimand, model = model, corstr = corstr, trajectory = traj))
}

out <- list(
  generated_by = paste0("tests/reference/mixed_plan.R; ", R.version.string, "; lme4 ",
                        packageVersion("lme4"), ", geepack ", packageVersion("geepack")),
  definitions = readLines(if (length(script_arg) == 1) script_arg else
                          "tests/reference/mixed_plan.R")[11:27],
  analyses = list(
    joint_slope = analysis("trt * years * (stagegrp + age)", c("stagegrp", "age"), "slope"),
    oaat_slope_stage = analysis("trt * years * stagegrp", "stagegrp", "slope"),
    oaat_slope_age = analysis("trt * years * age", "age", "slope"),
    oaat_landmark_stage = analysis("trt * years * stagegrp", "stagegrp", "landmark"),
    oaat_landmark_age = analysis("trt * years * age", "age", "landmark"),
    gee_ind_stage = analysis("trt * years * stagegrp", "stagegrp", "slope", "gee", "independence")),
  overall = list(slope = overall("slope"), landmark = overall("landmark"),
                 gee_ind = overall("slope", "gee", "independence")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = 1),
           file.path(ref_dir, "mixed_plan.json"))
cat("wrote", file.path(ref_dir, "mixed_plan.json"), "\n")
