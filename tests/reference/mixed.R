# Independent R reference numbers for hte_report.fit_mixed (treatment effect on the slope).
#
# Regenerate from the repository root:
#     Rscript tests/reference/mixed.R
#
# Writes tests/reference/data/pbcseq.csv (from survival::pbcseq) and tests/reference/mixed.json.
# Needs R >= 4.2 with survival (data), lme4, geepack and jsonlite.
#
# Data: the Mayo Clinic PBC trial (D-penicillamine vs placebo, randomized, 312 patients) with its
# follow-up laboratory visits (survival::pbcseq). Outcome log(bilirubin), time in years since
# enrolment; modifiers baseline histologic stage (1-2 / 3 / 4) and age at enrolment.
# Model: logbili ~ trt * years * (stagegrp + age), random intercept (+ slope) per patient.
# Definitions (also in the "definitions" entry of the JSON):
#  - lmer(REML = TRUE / FALSE) with tight nloptwrap tolerances; vcov(fit) for the fixed effects.
#  - Slope effect at a modifier value: L b with L = x(trt=1, years=1) - x(trt=0, years=1)
#    - x(trt=1, years=0) + x(trt=0, years=0) from model.matrix of the profile row (other
#    covariates: mean / most frequent level over patients, ties -> smallest); continuous
#    modifiers at the type-7 quartiles over patients. SE sqrt(L V L'), z intervals.
#  - Overall slope effect: L averaged over patients (their baseline rows).
#  - Wald: the trt:years:modifier coefficients (assign); equality: K-1 differences of the
#    level slope effects from the first level.
#  - GEE: geepack::geeglm(gaussian, corstr = "exchangeable", id = id, epsilon = 1e-13),
#    robust (sandwich) vcov; geepack estimates the scale and alpha without df corrections.

suppressPackageStartupMessages({
  library(survival)
  library(lme4)
  library(geepack)
  library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
Z <- qnorm(0.975)

# ---- data
p <- survival::pbcseq
p <- p[order(p$id, p$day), ]
first <- p[!duplicated(p$id), ]
stage0 <- setNames(first$stage, first$id)
d <- data.frame(id = p$id, trt = p$trt, day = p$day, years = p$day / 365.25,
                bili = p$bili, logbili = log(p$bili), age = p$age, sex = as.character(p$sex),
                stagegrp = c("1-2", "1-2", "3", "4")[stage0[as.character(p$id)]])
write.csv(d, file.path(ref_dir, "data", "pbcseq.csv"), row.names = FALSE)
d <- read.csv(file.path(ref_dir, "data", "pbcseq.csv"), stringsAsFactors = FALSE)
d$stagegrp <- factor(d$stagegrp)

rhs <- "trt * years * (stagegrp + age)"
tt <- delete.response(terms(as.formula(paste("logbili ~", rhs))))
xmat <- function(nd) {
  nd$stagegrp <- factor(as.character(nd$stagegrp), levels = levels(d$stagegrp))
  model.matrix(tt, model.frame(tt, nd))
}
base <- d[!duplicated(d$id), ]
mode_of <- function(x) { tab <- table(x); sort(names(tab)[tab == max(tab)])[1] }
profile <- list(stagegrp = mode_of(base$stagegrp), age = mean(base$age))
Lrow <- function(nd) {
  g <- function(t, y) { n <- nd; n$trt <- t; n$years <- y; xmat(n) }
  g(1, 1) - g(0, 1) - g(1, 0) + g(0, 0)
}
diff_row <- function(est, se) {
  stat <- est / se
  list(estimate = est, std_error = se, conf_low = est - Z * se, conf_high = est + Z * se,
       statistic = stat, p_value = 2 * pnorm(-abs(stat)))
}
wald <- function(b, V) {
  W <- as.numeric(t(b) %*% solve(V, b))
  list(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}

effects <- function(b, V, assign_terms) {
  rows <- list()
  levs <- levels(d$stagegrp)
  Ls <- list()
  for (lv in levs) {
    nd <- as.data.frame(profile, stringsAsFactors = FALSE); nd$stagegrp <- lv
    nd$trt <- 0; nd$years <- 0
    L <- Lrow(nd)
    Ls[[lv]] <- L
    r <- diff_row(sum(L * b), sqrt(drop(L %*% V %*% t(L))))
    rows[[length(rows) + 1]] <- c(r, list(modifier = "stagegrp", level = lv,
                                          n = sum(base$stagegrp == lv),
                                          n_treated = sum(base$stagegrp == lv & base$trt == 1)))
  }
  for (v in unname(quantile(base$age, c(.25, .5, .75), type = 7))) {
    nd <- as.data.frame(profile, stringsAsFactors = FALSE); nd$age <- v
    nd$trt <- 0; nd$years <- 0
    L <- Lrow(nd)
    rows[[length(rows) + 1]] <- c(diff_row(sum(L * b), sqrt(drop(L %*% V %*% t(L)))),
                                  list(modifier = "age", value = v))
  }
  nb <- base; nb$trt <- 0; nb$years <- 0
  Lbar <- colMeans(Lrow(nb))
  overall <- diff_row(sum(Lbar * b), sqrt(drop(Lbar %*% V %*% Lbar)))
  tests <- list()
  for (m in c("stagegrp", "age")) {
    idx <- assign_terms[[paste0("trt:years:", m)]]
    tests[[length(tests) + 1]] <- c(list(modifier = m, test = "wald"), wald(b[idx], V[idx, idx, drop = FALSE]))
  }
  L <- do.call(rbind, Ls)
  C <- cbind(-1, diag(nrow(L) - 1))
  tests[[length(tests) + 1]] <- c(list(modifier = "stagegrp", test = "equality"),
                                  wald(C %*% L %*% b, C %*% L %*% V %*% t(L) %*% t(C)))
  list(slopes = rows, overall = overall, tests = tests)
}

ctrl <- lmerControl(optimizer = "nloptwrap", calc.derivs = FALSE,
                    optCtrl = list(xtol_rel = 1e-14, ftol_rel = 1e-16, ftol_abs = 1e-16,
                                   xtol_abs = 1e-14, maxeval = 1e5))
fits <- list()
for (re in c("intercept", "slope")) for (reml in c(TRUE, FALSE)) {
  ref <- if (re == "intercept") "(1 | id)" else "(1 + years | id)"
  f <- lmer(as.formula(paste("logbili ~", rhs, "+", ref)), data = d, REML = reml, control = ctrl)
  X <- getME(f, "X")
  asg <- split(seq_len(ncol(X)), attr(X, "assign"))
  names(asg) <- c("(Intercept)", attr(tt, "term.labels"))[as.integer(names(asg)) + 1]
  b <- fixef(f)
  V <- as.matrix(vcov(f))
  e <- effects(b, V, asg)
  vc <- as.data.frame(VarCorr(f))
  fits[[length(fits) + 1]] <- c(list(model = "lmm", random = re, reml = reml,
                                     loglik = as.numeric(logLik(f)), coefficients = as.list(b),
                                     std_errors = as.list(sqrt(diag(V))),
                                     varcorr = lapply(seq_len(nrow(vc)), function(i) as.list(vc[i, ]))), e)
}
g <- geeglm(as.formula(paste("logbili ~", rhs)), id = id, data = d, family = gaussian,
            corstr = "exchangeable", control = geese.control(epsilon = 1e-13, maxit = 500))
Xg <- model.matrix(g)
asg <- split(seq_len(ncol(Xg)), attr(Xg, "assign"))
names(asg) <- c("(Intercept)", attr(tt, "term.labels"))[as.integer(names(asg)) + 1]
bg <- coef(g)
Vg <- as.matrix(vcov(g))
fits[[length(fits) + 1]] <- c(list(model = "gee", random = NA, reml = NA,
                                   alpha = unname(g$geese$alpha), scale = unname(g$geese$gamma),
                                   coefficients = as.list(bg), std_errors = as.list(sqrt(diag(Vg)))),
                              effects(bg, Vg, asg))

out <- list(
  generated_by = paste0("tests/reference/mixed.R; ", R.version.string, "; lme4 ",
                        packageVersion("lme4"), ", geepack ", packageVersion("geepack"),
                        ", survival ", packageVersion("survival")),
  definitions = readLines(if (length(script_arg) == 1) script_arg else "tests/reference/mixed.R")[3:23],
  n_rows = nrow(d), n_patients = nrow(base), profile = profile, fits = fits)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = 1),
           file.path(ref_dir, "mixed.json"))
cat("wrote", file.path(ref_dir, "mixed.json"), "\n")
