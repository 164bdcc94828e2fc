# Reference for hte_report.estimation.outofcore.fit_file (issue 21): the joint model
# y ~ treat * (age + sbp + sex) on tests/reference/data/outofcore.csv (complete cases), fitted
# by R's glm with sandwich variances: logit (model-based), modified Poisson (HC0), OLS (HC3)
# and logit with a cluster-robust variance on site (vcovCL, HC1 small-sample factor); the
# likelihood-ratio tests of each modifier's interaction (logit); standardized risk
# differences by sex (logit, g-computation). Run: Rscript tests/reference/outofcore.R
suppressPackageStartupMessages({library(sandwich); library(jsonlite)})
d <- read.csv("tests/reference/data/outofcore.csv")
d <- d[complete.cases(d[, c("y", "treat", "age", "sbp", "sex")]), ]
d$sex <- factor(d$sex)
f <- y ~ treat * (age + sbp + sex)
lg <- glm(f, family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
mp <- glm(f, family = poisson, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
ol <- lm(f, data = d)
se <- function(v) unname(sqrt(diag(v)))
lr <- sapply(c("age", "sbp", "sex"), function(m) {
  red <- update(lg, as.formula(paste(". ~ . - treat:", m)))
  2 * (as.numeric(logLik(lg)) - as.numeric(logLik(red)))
})
std_rd <- sapply(levels(d$sex), function(s) {
  sub <- d[d$sex == s, ]
  p1 <- predict(lg, transform(sub, treat = 1), type = "response")
  p0 <- predict(lg, transform(sub, treat = 0), type = "response")
  mean(p1) - mean(p0)
})
out <- list(
  n = nrow(d),
  terms = names(coef(lg)),
  logit = list(coef = unname(coef(lg)), se = se(vcov(lg)), loglik = as.numeric(logLik(lg))),
  logit_cl = list(se = se(vcovCL(lg, cluster = ~site, type = "HC1"))),
  poisson = list(coef = unname(coef(mp)), se = se(vcovHC(mp, type = "HC0"))),
  ols = list(coef = unname(coef(ol)), se = se(vcovHC(ol, type = "HC3"))),
  lr = as.list(lr),
  std_rd_logit = as.list(std_rd)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/outofcore.json")
