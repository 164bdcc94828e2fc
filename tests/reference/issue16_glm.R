# Issue 16: coefficient tables, covariance matrices, model statistics and t inference of the
# working models, from R (lm / glm, sandwich, lmtest), on public randomized data sets:
#   rossi.csv    (Rossi et al. 1980; binary outcome: lm HC3, glm poisson HC0, glm logit)
#   anorexia.csv (MASS::anorexia, n = 72, continuous outcome, three arms: each active arm vs
#                 Cont on the patients of the two arms; lm with HC3 and model variance, t and z)
#   nsw.csv      (NSW job-training experiment, continuous outcome, lm HC3, t and z; the joint
#                 model's F test of every interaction)
#   randhie.csv  (RAND HIE, count outcome: glm poisson, model variance)
# Regenerate from the repository root:  Rscript tests/reference/issue16_glm.R
# Writes tests/reference/issue16_glm.json. Needs sandwich, lmtest, jsonlite.
suppressPackageStartupMessages({library(sandwich); library(lmtest); library(jsonlite)})
dd <- "tests/reference/data"
CTRL <- glm.control(epsilon = 1e-15, maxit = 500)
LEVEL <- 0.95

vcov_of <- function(fit, variance) {
  if (variance == "model") return(vcov(fit))
  vcovHC(fit, type = variance)
}

# one working model: coefficient table (coeftest + coefci), vcov, glance-type statistics
record <- function(fit, variance, inference, extra = list()) {
  V <- vcov_of(fit, variance)
  df <- if (inference == "t") df.residual(fit) else Inf
  ct <- coeftest(fit, vcov. = V, df = df)
  ci <- coefci(fit, vcov. = V, df = df, level = LEVEL)
  is_lm <- !inherits(fit, "glm")
  y <- model.response(model.frame(fit))
  dev <- deviance(fit)
  null_dev <- if (is_lm) sum((y - mean(y))^2) else fit$null.deviance
  c(list(variance = variance, inference = inference, n = nobs(fit),
         terms = rownames(ct), estimate = unname(ct[, 1]), std_error = unname(ct[, 2]),
         statistic = unname(ct[, 3]), p_value = unname(ct[, 4]),
         conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2]),
         df = if (inference == "t") df.residual(fit) else NULL,
         vcov = unname(V),
         loglik = as.numeric(logLik(fit)), aic = AIC(fit), bic = BIC(fit), deviance = dev,
         null_deviance = null_dev, df_residual = df.residual(fit),
         df_null = if (is_lm) nobs(fit) - 1 else fit$df.null), extra)
}

# t (or z) interval of linear combinations L b with covariance L V L'
combo <- function(L, b, V, df) {
  est <- as.numeric(L %*% b); se <- sqrt(diag(L %*% V %*% t(L)))
  crit <- if (is.finite(df)) qt(0.5 + LEVEL / 2, df) else qnorm(0.5 + LEVEL / 2)
  stat <- est / se
  p <- if (is.finite(df)) 2 * pt(-abs(stat), df) else 2 * pnorm(-abs(stat))
  list(estimate = est, std_error = se, conf_low = est - crit * se, conf_high = est + crit * se,
       statistic = stat, p_value = p)
}
# Wald test of the coefficients idx: F (t inference, as lmtest::waldtest(test = "F")) or
# chi-square
wald <- function(b, V, idx, df) {
  W <- as.numeric(t(b[idx]) %*% solve(V[idx, idx], b[idx])); q <- length(idx)
  if (is.finite(df)) list(statistic = W / q, df = q, df_denominator = df,
                          p_value = pf(W / q, q, df, lower.tail = FALSE))
  else list(statistic = W, df = q, p_value = pchisq(W, q, lower.tail = FALSE))
}

fits <- list()

# --- Rossi: binary outcome, three working models (z, as R's glm; OLS also with t) ---------
rossi <- read.csv(file.path(dd, "rossi.csv"))
f_r <- arrest ~ fin * (age + factor(wexp)) + prio
base <- list(case = "rossi", data = "rossi.csv", treatment = "fin",
             formula = "arrest ~ fin * (age + C(wexp)) + prio")
ols <- lm(f_r, data = rossi)
fits[[length(fits) + 1]] <- c(base, list(model = "ols"), record(ols, "HC3", "z"))
fits[[length(fits) + 1]] <- c(base, list(model = "ols"), record(ols, "HC3", "t"))
mp <- glm(f_r, family = poisson(), data = rossi, control = CTRL)
fits[[length(fits) + 1]] <- c(base, list(model = "modified-poisson"), record(mp, "HC0", "z"))
lg <- glm(f_r, family = binomial(), data = rossi, control = CTRL)
fits[[length(fits) + 1]] <- c(base, list(model = "logit"), record(lg, "model", "z"))

# Rossi as a rate: arrests per week at risk (Poisson with offset log(week), model variance);
# R's null deviance refits the intercept with the offset
fit <- glm(arrest ~ fin * (age + factor(wexp)) + offset(log(week)), family = poisson(),
           data = rossi, control = CTRL)
fits[[length(fits) + 1]] <- c(list(case = "rossi-rate", data = "rossi.csv", treatment = "fin",
                                   formula = "arrest ~ fin * (age + C(wexp))", exposure = "week",
                                   model = "poisson"),
                              record(fit, "model", "z"))

# --- anorexia (n = 72): each active arm vs Cont, Postwt ~ Treat * Prewt --------------------
an <- read.csv(file.path(dd, "anorexia.csv"))
for (arm in c("CBT", "FT")) {
  d <- an[an$Treat %in% c("Cont", arm), ]
  d$trt <- as.integer(d$Treat == arm)
  fit <- lm(Postwt ~ trt * Prewt, data = d)
  q <- unname(quantile(d$Prewt, c(0.25, 0.5, 0.75), type = 7))
  L <- cbind(0, 1, 0, q)  # conditional mean difference at Prewt = q
  for (variance in c("HC3", "model")) {
    for (inference in c("t", "z")) {
      V <- vcov_of(fit, variance)
      df <- if (inference == "t") df.residual(fit) else Inf
      extra <- list(conditional = c(list(value = q), combo(L, coef(fit), V, df)),
                    per_unit = combo(matrix(c(0, 0, 0, 1), 1), coef(fit), V, df),
                    wald = wald(coef(fit), V, 4, df))
      fits[[length(fits) + 1]] <- c(list(case = "anorexia", data = "anorexia.csv",
                                         treatment = "Treat", control = "Cont",
                                         comparison = paste(arm, "vs Cont"),
                                         formula = "Postwt ~ Treat * Prewt", model = "ols"),
                                    record(fit, variance, inference, extra))
    }
  }
}

# --- NSW: continuous outcome, joint model; F test of every interaction at once ------------
nsw <- read.csv(file.path(dd, "nsw.csv"))
fit <- lm(re78 ~ treat * (age + factor(black) + nodegree) + educ + re75, data = nsw)
inter <- grep(":", names(coef(fit)))
# standardized (g-computation) mean differences within each level of black and over everyone:
# the average of (X1 - X0) b over the rows, a linear combination of the coefficients
X1 <- model.matrix(fit, data = transform(nsw, treat = 1))
X0 <- model.matrix(fit, data = transform(nsw, treat = 0))
L <- rbind(colMeans((X1 - X0)[nsw$black == 0, ]), colMeans((X1 - X0)[nsw$black == 1, ]),
           colMeans(X1 - X0))
for (inference in c("t", "z")) {
  V <- vcovHC(fit, type = "HC3")
  df <- if (inference == "t") df.residual(fit) else Inf
  std <- c(list(level = c("0", "1", "overall")), combo(L, coef(fit), V, df))
  D <- L[2, , drop = FALSE] - L[1, , drop = FALSE]  # equality of the two subgroup effects
  W <- as.numeric((D %*% coef(fit))^2 / (D %*% V %*% t(D)))
  equality <- if (is.finite(df)) list(statistic = W, df = 1, df_denominator = df,
                                      p_value = pf(W, 1, df, lower.tail = FALSE))
              else list(statistic = W, df = 1, p_value = pchisq(W, 1, lower.tail = FALSE))
  fits[[length(fits) + 1]] <- c(list(case = "nsw", data = "nsw.csv", treatment = "treat",
                                     formula = "re78 ~ treat * (age + C(black) + nodegree) + educ + re75",
                                     model = "ols"),
                                record(fit, "HC3", inference,
                                       list(joint_wald = wald(coef(fit), V, inter, df),
                                            standardized_black = std,
                                            equality_black = equality)))
}

# --- RAND HIE: count outcome, Poisson with model-based variance ---------------------------
hie <- read.csv(file.path(dd, "randhie.csv"))
fit <- glm(mdvis ~ free * (factor(hlthg) + disea) + physlm, family = poisson(), data = hie,
           control = CTRL)
fits[[length(fits) + 1]] <- c(list(case = "randhie", data = "randhie.csv", treatment = "free",
                                   formula = "mdvis ~ free * (C(hlthg) + disea) + physlm",
                                   model = "poisson"),
                              record(fit, "model", "z"))

writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_glm.R;", R.version.string,
                                            "; sandwich", packageVersion("sandwich"),
                                            "; lmtest", packageVersion("lmtest")),
                       fits = fits),
                  digits = NA, auto_unbox = TRUE, pretty = FALSE, null = "null"),
           "tests/reference/issue16_glm.json")
