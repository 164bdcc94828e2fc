# Reference numbers for tests/test_reference_unseen.py: MASS::birthwt (Hosmer & Lemeshow,
# Applied Logistic Regression; 189 births, Baystate Medical Center 1986; MASS: GPL-2 | GPL-3).
# Binary outcome `low` (birth weight < 2.5 kg), "treatment" `smoke` (smoking during pregnancy;
# observational, analysed here as the package would analyse a trial arm), modifiers race
# (1 white, 2 black, 3 other; factor, reference 1), age (continuous) and ui (uterine
# irritability, 0/1 factor), adjustment lwt (mother's weight, lb) and ptl (premature labours,
# numeric). The package call:
#   hr.fit("low ~ smoke * (C(race) + age + C(ui)) + lwt + ptl", data, treatment="smoke")
#   and the same with strategy="joint", conf_level=0.90.
# Working models ols-HC3, modified-poisson-HC0, logit (model vcov); z inference.
# Writes tests/reference/data/unseen_birthwt.csv (the data set as is) and
# tests/reference/unseen_birthwt.json. Run from the repository root:
#   Rscript tests/reference/unseen_birthwt.R
source("tests/reference/unseen_common.R")
suppressPackageStartupMessages(library(MASS))

csv <- "tests/reference/data/unseen_birthwt.csv"
write.csv(MASS::birthwt, csv, row.names = FALSE)
d <- read.csv(csv)
stopifnot(isTRUE(all.equal(d, MASS::birthwt, check.attributes = FALSE)))

models <- list(list(model = "ols", variance = "HC3"),
               list(model = "modified-poisson", variance = "HC0"),
               list(model = "logit", variance = "model"))
mods <- c(race = "factor", age = "numeric", ui = "factor")
adj <- c(lwt = "numeric", ptl = "numeric")
R <- run_analysis(d, "low", "smoke", mods, adj, "binary", models, level = 0.95)
RJ <- run_analysis(d, "low", "smoke", mods, adj, "binary", models, level = 0.90, strategy = "joint")

# second routes: the standardized RD of the logit model over race = 2 by predict(), the HC3
# coefficient SEs through lm's formula interface, the LR test through anova()
chk <- local({
  g <- glm(low ~ smoke * factor(race) + lwt + ptl, binomial, d, control = CTRL)
  s <- d[d$race == 2, ]
  rd <- mean(predict(g, transform(s, smoke = 1), type = "response")) -
    mean(predict(g, transform(s, smoke = 0), type = "response"))
  r <- Filter(function(x) x$analysis == "one-at-a-time" && x$modifier == "race" &&
                identical(x$level, "2") && x$scale == "RD" && x$model == "logit" &&
                x$method == "standardized", R$subgroups)[[1]]
  stopifnot(abs(rd - r$estimate) < 1e-10)
  l <- lm(low ~ smoke * age + lwt + ptl, d)
  se <- sqrt(diag(vcovHC(l, type = "HC3")))[["smoke:age"]]
  r <- Filter(function(x) x$analysis == "one-at-a-time" && x$modifier == "age" &&
                x$model == "ols-HC3" && x$term == "smoke:age", R$coefficients)[[1]]
  stopifnot(abs(se - r$std_error) < 1e-12)
  a <- anova(glm(low ~ smoke + factor(ui) + lwt + ptl, binomial, d, control = CTRL),
             glm(low ~ smoke * factor(ui) + lwt + ptl, binomial, d, control = CTRL), test = "LRT")
  r <- Filter(function(x) x$analysis == "one-at-a-time" && x$modifier == "ui" &&
                x$test == "lr", R$tests)[[1]]
  stopifnot(abs(a$Deviance[2] - r$statistic) < 1e-8)
  "predict(), lm + vcovHC and anova() agree"
})

write_reference(list(case = "birthwt", checks = chk,
                     formula = "low ~ smoke * (C(race) + age + C(ui)) + lwt + ptl",
                     calls = list(default = list(treatment = "smoke"),
                                  joint = list(treatment = "smoke", strategy = "joint",
                                               conf_level = 0.90)),
                     runs = list(default = R, joint = RJ)),
                "tests/reference/unseen_birthwt.json")
