# Reference numbers for many-level adjustment factors (issue 21): the Thornton (2008) HIV
# incentive experiment in Malawi, `got ~ any * (age + distvct) + factor(villnum)` with a fixed
# effect per village (104 villages with both outcomes among the complete cases; 14 villages
# where everyone / 1 where no-one got the result are left out, as their logit and log-link
# coefficients are infinite). hte_report fits the village factor as a split design
# (codes, not dummies); tests/test_wide_factors.py compares.
# Run from the repository root: Rscript tests/reference/wide_factor.R
suppressPackageStartupMessages({library(sandwich); library(jsonlite)})
d <- read.csv("tests/reference/data/thornton_hiv.csv")
d <- d[complete.cases(d[, c("got", "any", "age", "distvct", "villnum")]), ]
m <- tapply(d$got, d$villnum, mean)
d <- d[d$villnum %in% as.numeric(names(m)[m > 0 & m < 1]), ]
f <- got ~ any * (age + distvct) + factor(villnum)
fits <- list(
  ols = lm(f, data = d),
  "modified-poisson" = glm(f, family = poisson(), data = d,
                           control = glm.control(epsilon = 1e-14, maxit = 100)),
  logit = glm(f, family = binomial(), data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
)
variances <- list(ols = c("model", "HC0", "HC1", "HC2", "HC3", "CL"),
                  "modified-poisson" = c("HC0", "HC1", "HC2", "HC3", "CL"),
                  logit = c("model", "HC0", "HC3", "CL"))
vc <- function(fit, v) {
  if (v == "model") return(vcov(fit))
  if (v == "CL") return(vcovCL(fit, cluster = ~villnum, type = "HC1", cadjust = TRUE))
  vcovHC(fit, type = v)
}
d1 <- transform(d, any = 1); d0 <- transform(d, any = 0)
X1 <- model.matrix(f, d1); X0 <- model.matrix(f, d0)
out <- list()
for (name in names(fits)) {
  fit <- fits[[name]]; b <- coef(fit)
  inv <- if (name == "ols") identity else family(fit)$linkinv
  mu.eta <- if (name == "ols") function(e) rep(1, length(e)) else family(fit)$mu.eta
  e1 <- drop(X1 %*% b); e0 <- drop(X0 %*% b)
  m1 <- mean(inv(e1)); m0 <- mean(inv(e0))
  g1 <- colMeans(X1 * mu.eta(e1)); g0 <- colMeans(X0 * mu.eta(e0))
  for (v in variances[[name]]) {
    V <- vc(fit, v)
    wald <- sapply(c("age", "distvct"), function(mod) {
      k <- paste0("any:", mod); unname(b[k]^2 / V[k, k])
    })
    jd <- g1 - g0; jr <- g1 / m1 - g0 / m0
    out[[length(out) + 1]] <- list(
      model = name, variance = v, n = nrow(d), villages = length(unique(d$villnum)),
      terms = names(b), estimate = unname(b), std_error = unname(sqrt(diag(V))),
      loglik = if (name == "ols") NA else as.numeric(logLik(fit)),
      rd = m1 - m0, rd_se = sqrt(drop(t(jd) %*% V %*% jd)),
      rr = m1 / m0, rr_se = sqrt(drop(t(jr) %*% V %*% jr)),
      wald_age = wald[["age"]], wald_distvct = wald[["distvct"]])
  }
}
writeLines(toJSON(list(generated_by = "tests/reference/wide_factor.R", R = R.version.string,
                       fits = out), digits = I(17), auto_unbox = TRUE, na = "null"),
           "tests/reference/wide_factor.json")
