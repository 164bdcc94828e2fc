# Issue 16: the joint heterogeneity test of a Cox model (survival::coxph, Efron ties): every
# treatment x modifier coefficient of the model with all interactions is zero. Wald with the
# model-based variance and the likelihood-ratio test (anova(reduced, full)).
#   rossi.csv: Surv(week, arrest) ~ fin * (age + factor(wexp)) + prio
#   gbsg2.csv: Surv(time, cens) ~ horTh * (age + factor(menostat)) + tsize
# Regenerate from the repository root:  Rscript tests/reference/issue16_joint_cox.R
# Writes tests/reference/issue16_joint_cox.json. Needs survival, jsonlite.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
dd <- "tests/reference/data"
rossi <- read.csv(file.path(dd, "rossi.csv"))
gbsg <- read.csv(file.path(dd, "gbsg2.csv"))
gbsg$hor <- as.integer(gbsg$horTh == "yes")
cases <- list(
  list(case = "rossi", data = rossi, treatment = "fin",
       full = Surv(week, arrest) ~ fin * (age + factor(wexp)) + prio,
       reduced = Surv(week, arrest) ~ fin + age + factor(wexp) + prio,
       formula = "Surv(week, arrest) ~ fin * (age + C(wexp)) + prio"),
  list(case = "gbsg2", data = gbsg, treatment = "horTh",
       full = Surv(time, cens) ~ hor * (age + factor(menostat)) + tsize,
       reduced = Surv(time, cens) ~ hor + age + factor(menostat) + tsize,
       formula = "Surv(time, cens) ~ horTh * (age + C(menostat)) + tsize"))
out <- lapply(cases, function(cs) {
  full <- coxph(cs$full, data = cs$data, ties = "efron")
  red <- coxph(cs$reduced, data = cs$data, ties = "efron")
  idx <- grep(":", names(coef(full))); b <- coef(full)[idx]
  W <- as.numeric(t(b) %*% solve(vcov(full)[idx, idx], b))
  a <- anova(red, full)
  list(case = cs$case, formula = cs$formula, treatment = cs$treatment, n = full$n,
       wald = list(statistic = W, df = length(idx),
                   p_value = pchisq(W, length(idx), lower.tail = FALSE)),
       lr = list(statistic = a$Chisq[2], df = a$Df[2], p_value = a[["Pr(>|Chi|)"]][2]))
})
writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_joint_cox.R;",
                                            R.version.string, "; survival",
                                            packageVersion("survival")), cases = out),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/issue16_joint_cox.json")
