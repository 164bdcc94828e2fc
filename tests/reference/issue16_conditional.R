# Issue 16: conditional effects on every scale of every working model at the reference profile
# (continuous covariates at their means), in each level of a binary modifier: the RD and RR
# from a logit model beside its OR, the RD from a modified Poisson model, the RR from a linear
# probability model. Delta method by hand from R's glm/lm with the model's variance, and the
# logit RD also through emmeans (regrid to the response scale) as a cross-check.
#   rossi.csv: arrest ~ fin * factor(wexp) + age + prio
#   nsw.csv:   emp (re78 > 0) ~ treat * factor(black) + age + educ
# The third case evaluates them at a stated covariate profile (hte_report's at= for
# covariates). Also the arm means (predicted risks under treatment and control) with delta-method SEs, at
# the profile and standardized over each level's rows.
# Regenerate from the repository root:  Rscript tests/reference/issue16_conditional.R
# Writes tests/reference/issue16_conditional.json. Needs sandwich, emmeans, jsonlite.
suppressPackageStartupMessages({library(sandwich); library(emmeans); library(jsonlite)})
dd <- "tests/reference/data"
CTRL <- glm.control(epsilon = 1e-15, maxit = 500)
Z <- qnorm(0.975)
rossi <- read.csv(file.path(dd, "rossi.csv"))
nsw <- read.csv(file.path(dd, "nsw.csv")); nsw$emp <- as.integer(nsw$re78 > 0)
cases <- list(
  list(case = "rossi", data = rossi, f = arrest ~ fin * factor(wexp) + age + prio,
       formula = "arrest ~ fin * C(wexp) + age + prio", treatment = "fin", modifier = "wexp",
       others = c("age", "prio")),
  list(case = "nsw", data = nsw, f = emp ~ treat * factor(black) + age + educ,
       formula = "emp ~ treat * C(black) + age + educ", treatment = "treat",
       modifier = "black", others = c("age", "educ")),
  # a stated covariate profile (at = list(age = 30, prio = 5)) instead of the means
  list(case = "rossi", data = rossi, f = arrest ~ fin * factor(wexp) + age + prio,
       formula = "arrest ~ fin * C(wexp) + age + prio", treatment = "fin", modifier = "wexp",
       others = c("age", "prio"), at = list(age = 30, prio = 5)))
inv <- list(identity = function(e) list(mu = e, d = rep(1, length(e))),
            log = function(e) list(mu = exp(e), d = exp(e)),
            logit = function(e) list(mu = plogis(e), d = plogis(e) * (1 - plogis(e))))
out <- list()
for (cs in cases) {
  d <- cs$data
  for (model in c("ols", "modified-poisson", "logit")) {
    fit <- switch(model,
                  "ols" = lm(cs$f, data = d),
                  "modified-poisson" = glm(cs$f, family = poisson(), data = d, control = CTRL),
                  "logit" = glm(cs$f, family = binomial(), data = d, control = CTRL))
    V <- switch(model, "ols" = vcovHC(fit, type = "HC3"),
                "modified-poisson" = vcovHC(fit, type = "HC0"), "logit" = vcov(fit))
    link <- switch(model, "ols" = "identity", "modified-poisson" = "log", "logit" = "logit")
    b <- coef(fit)
    rows <- list()
    for (level in c(0, 1)) {
      prof <- as.data.frame(lapply(d[cs$others], mean))
      for (k in names(cs$at)) prof[[k]] <- cs$at[[k]]
      prof[[cs$modifier]] <- level
      x1 <- model.matrix(delete.response(terms(fit)),
                         transform(prof, tmp = 1)[, c(cs$others, cs$modifier)] |>
                           cbind(setNames(data.frame(1), cs$treatment)),
                         xlev = fit$xlevels)
      x0 <- x1; x0[, grep(cs$treatment, colnames(x0))] <- 0
      a1 <- inv[[link]](sum(x1 * b)); a0 <- inv[[link]](sum(x0 * b))
      g1 <- a1$d * x1; g0 <- a0$d * x0
      m1 <- a1$mu; m0 <- a0$mu
      scales <- list(RD = list(theta = m1 - m0, g = g1 - g0, ratio = FALSE),
                     RR = list(theta = log(m1) - log(m0), g = g1 / m1 - g0 / m0, ratio = TRUE))
      if (model == "logit")
        scales$OR <- list(theta = qlogis(m1) - qlogis(m0),
                          g = g1 / (m1 * (1 - m1)) - g0 / (m0 * (1 - m0)), ratio = TRUE)
      arm_se <- c(sqrt(as.numeric(g1 %*% V %*% t(g1))), sqrt(as.numeric(g0 %*% V %*% t(g0))))
      # standardized arm means over the level's rows (g-computation) and their delta-method SEs
      rows_l <- d[[cs$modifier]] == level
      X1 <- model.matrix(fit, data = `[[<-`(d, cs$treatment, value = 1))[rows_l, ]
      X0 <- X1; X0[, grep(cs$treatment, colnames(X0))] <- 0
      s1 <- inv[[link]](as.numeric(X1 %*% b)); s0 <- inv[[link]](as.numeric(X0 %*% b))
      G1 <- colMeans(s1$d * X1); G0 <- colMeans(s0$d * X0)
      standardized_arms <- list(mu1 = mean(s1$mu), mu0 = mean(s0$mu),
                                mu1_se = sqrt(as.numeric(G1 %*% V %*% G1)),
                                mu0_se = sqrt(as.numeric(G0 %*% V %*% G0)))
      for (sc in names(scales)) {
        s <- scales[[sc]]; se <- sqrt(as.numeric(s$g %*% V %*% t(s$g)))
        lo <- s$theta - Z * se; hi <- s$theta + Z * se
        tr <- if (s$ratio) exp else identity
        rows[[length(rows) + 1]] <- list(level = level, scale = sc, mu1 = m1, mu0 = m0,
                                         mu1_se = arm_se[1], mu0_se = arm_se[2],
                                         standardized_arms = standardized_arms,
                                         estimate = tr(s$theta), std_error = se,
                                         conf_low = tr(lo), conf_high = tr(hi),
                                         p_value = 2 * pnorm(-abs(s$theta / se)))
      }
      if (model == "logit") {  # emmeans: the same RD on the response scale
        at <- c(as.list(prof[cs$others]), setNames(list(level), cs$modifier))
        em <- emmeans(fit, as.formula(paste("~", cs$treatment)), at = at,
                      regrid = "response",
                      data = transform(d, wexp = d[[cs$modifier]]))
        ct <- summary(contrast(em, list(RD = c(-1, 1))), infer = TRUE, level = 0.95)
        rows[[length(rows)]]$emmeans_rd <- list(estimate = ct$estimate, std_error = ct$SE)
      }
    }
    out[[length(out) + 1]] <- list(case = cs$case, formula = cs$formula, at = cs$at,
                                   treatment = cs$treatment, modifier = cs$modifier,
                                   model = model, rows = rows)
  }
}
writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_conditional.R;",
                                            R.version.string), fits = out),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/issue16_conditional.json")
