# Global (all-arms) interaction tests of a three-arm treatment, for tests/test_strategies.py.
# One model with the treatment as a three-level factor (control first) crossed with ONE
# modifier, plus the adjustment covariates, on the rows where that model's variables are
# observed; Wald test of all arm x modifier coefficients with the model's variance (HC3 for
# lm, model-based for coxph), likelihood-ratio test against the model without them (coxph).
# Run from the repository root: Rscript tests/reference/global_tests.R
suppressPackageStartupMessages({library(survival); library(sandwich); library(jsonlite)})
wald <- function(b, V) { s <- as.numeric(t(b) %*% solve(V, b)); c(s, length(b), pchisq(s, length(b), lower.tail = FALSE)) }
out <- list()
colon <- read.csv("tests/reference/data/colon_death.csv")
colon$rx <- factor(colon$rx, levels = c("Obs", "Lev", "Lev+5FU"))
ctl <- coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15)
for (m in c("sex", "differ", "age")) {
  term <- if (m == "age") "age" else sprintf("factor(%s)", m)
  d <- colon[complete.cases(colon[, c("time", "status", "rx", m, "surg")]), ]
  full <- coxph(as.formula(sprintf("Surv(time, status) ~ rx * %s + factor(surg)", term)), data = d, ties = "efron", control = ctl)
  red <- coxph(as.formula(sprintf("Surv(time, status) ~ rx + %s + factor(surg)", term)), data = d, ties = "efron", control = ctl)
  idx <- grep(":", names(coef(full)))
  w <- wald(coef(full)[idx], vcov(full)[idx, idx])
  lr <- 2 * (full$loglik[2] - red$loglik[2])
  out[[length(out) + 1]] <- list(case = "colon", modifier = m, model = "cox", test = "wald", statistic = w[1], df = w[2], p_value = w[3], n = nrow(d))
  out[[length(out) + 1]] <- list(case = "colon", modifier = m, model = "cox", test = "lr", statistic = lr, df = length(idx), p_value = pchisq(lr, length(idx), lower.tail = FALSE), n = nrow(d))
}
an <- read.csv("tests/reference/data/anorexia.csv")
an$Treat <- factor(an$Treat, levels = c("Cont", "CBT", "FT"))
f <- lm(Postwt ~ Treat * Prewt, data = an)
idx <- grep(":", names(coef(f)))
w <- wald(coef(f)[idx], vcovHC(f, type = "HC3")[idx, idx])
out[[length(out) + 1]] <- list(case = "anorexia", modifier = "Prewt", model = "ols", test = "wald", statistic = w[1], df = w[2], p_value = w[3], n = nrow(an))
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE), "tests/reference/global_tests.json")
