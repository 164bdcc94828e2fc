# Issue 16: the joint (global) heterogeneity test across every modifier: all treatment x
# modifier coefficients of the joint model are zero. Wald chi-square with the model's
# variance (F = W / q on the residual df for lm under t inference, as lmtest::waldtest(test =
# "F") with a sandwich vcov), and the likelihood-ratio test (anova(reduced, full)) for logit.
#   rossi.csv: arrest ~ fin * (age + factor(wexp) + prio) + race
#   nsw.csv:   emp (re78 > 0) ~ treat * (age + factor(black) + nodegree) + educ
# Regenerate from the repository root:  Rscript tests/reference/issue16_joint.R
# Writes tests/reference/issue16_joint.json. Needs sandwich, lmtest, jsonlite.
suppressPackageStartupMessages({library(sandwich); library(lmtest); library(jsonlite)})
dd <- "tests/reference/data"
CTRL <- glm.control(epsilon = 1e-15, maxit = 500)
rossi <- read.csv(file.path(dd, "rossi.csv"))
nsw <- read.csv(file.path(dd, "nsw.csv")); nsw$emp <- as.integer(nsw$re78 > 0)
cases <- list(
  list(case = "rossi", data = rossi, treatment = "fin",
       full = arrest ~ fin * (age + factor(wexp) + prio) + race,
       reduced = arrest ~ fin + age + factor(wexp) + prio + race,
       formula = "arrest ~ fin * (age + C(wexp) + prio) + race"),
  list(case = "nsw", data = nsw, treatment = "treat",
       full = emp ~ treat * (age + factor(black) + nodegree) + educ,
       reduced = emp ~ treat + age + factor(black) + nodegree + educ,
       formula = "emp ~ treat * (age + C(black) + nodegree) + educ"))
out <- list()
for (cs in cases) {
  tests <- list()
  add <- function(model, test, res) tests[[length(tests) + 1]] <<- c(list(model = model, test = test), res)
  wald <- function(fit, V, df = Inf) {
    idx <- grep(":", names(coef(fit))); b <- coef(fit)[idx]
    W <- as.numeric(t(b) %*% solve(V[idx, idx], b)); q <- length(idx)
    if (is.finite(df)) list(statistic = W / q, df = q, df_denominator = df,
                            p_value = pf(W / q, q, df, lower.tail = FALSE))
    else list(statistic = W, df = q, p_value = pchisq(W, q, lower.tail = FALSE))
  }
  ols <- lm(cs$full, data = cs$data)
  add("ols-HC3", "wald-z", wald(ols, vcovHC(ols, type = "HC3")))
  add("ols-HC3", "wald-t", wald(ols, vcovHC(ols, type = "HC3"), df.residual(ols)))
  # the same F test through lmtest::waldtest, as a cross-check of the formula above
  wt <- waldtest(lm(cs$reduced, data = cs$data), ols, vcov = vcovHC(ols, type = "HC3"),
                 test = "F")
  add("ols-HC3", "waldtest-F", list(statistic = wt$F[2], df = abs(wt$Df[2]),
                                    df_denominator = wt$Res.Df[2],
                                    p_value = wt[["Pr(>F)"]][2]))
  mp <- glm(cs$full, family = poisson(), data = cs$data, control = CTRL)
  add("modified-poisson-HC0", "wald-z", wald(mp, vcovHC(mp, type = "HC0")))
  lg <- glm(cs$full, family = binomial(), data = cs$data, control = CTRL)
  add("logit", "wald-z", wald(lg, vcov(lg)))
  red <- glm(cs$reduced, family = binomial(), data = cs$data, control = CTRL)
  a <- anova(red, lg, test = "Chisq")
  add("logit", "lr", list(statistic = a$Deviance[2], df = a$Df[2],
                          p_value = a[["Pr(>Chi)"]][2]))
  out[[length(out) + 1]] <- list(case = cs$case, formula = cs$formula,
                                 treatment = cs$treatment, n = nobs(lg), tests = tests)
}
writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_joint.R;",
                                            R.version.string), cases = out),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/issue16_joint.json")
