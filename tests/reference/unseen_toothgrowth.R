# Reference numbers for tests/test_reference_unseen.py: datasets::ToothGrowth (Crampton 1947,
# J Nutrition 33:491; 60 guinea pigs, odontoblast length; R datasets: GPL). Continuous outcome
# `len`, randomized "treatment" oj (1 = orange juice, 0 = ascorbic acid; supp), modifier
# dose_mg (500 / 1000 / 2000 mg/day; factor, reference 500), no adjustment. Working model ols;
# the package's default t inference (qt and F on the residual df n - k, as lm + lmtest).
#  - default call: hr.fit("len ~ oj * C(dose_mg)", treatment="oj") (HC3, t)
#  - joint call: the same with strategy="joint", variance="HC1", conf_level=0.99.
# Writes tests/reference/data/unseen_toothgrowth.csv and tests/reference/unseen_toothgrowth.json.
#   Rscript tests/reference/unseen_toothgrowth.R
source("tests/reference/unseen_common.R")
suppressPackageStartupMessages(library(lmtest))

tg <- datasets::ToothGrowth
tg$oj <- as.integer(tg$supp == "OJ")
tg$dose_mg <- as.integer(round(tg$dose * 1000))
csv <- "tests/reference/data/unseen_toothgrowth.csv"
write.csv(tg[, c("len", "supp", "dose", "oj", "dose_mg")], csv, row.names = FALSE)
d <- read.csv(csv)
stopifnot(all(d$len == tg$len), all(d$dose_mg == c(500L, 1000L, 2000L)[as.integer(factor(tg$dose))]))

mods <- c(dose_mg = "factor")
R <- run_analysis(d, "len", "oj", mods, character(), "continuous",
                  list(list(model = "ols", variance = "HC3")), inference = "t")
RJ <- run_analysis(d, "len", "oj", mods, character(), "continuous",
                   list(list(model = "ols", variance = "HC1")), inference = "t", level = 0.99,
                   strategy = "joint")

chk <- local({
  l <- lm(len ~ oj * factor(dose_mg), d)
  ct <- coeftest(l, vcov. = vcovHC(l, type = "HC3"))
  r <- Filter(function(x) x$analysis == "one-at-a-time" && x$term == "oj:C(dose_mg)[T.2000]",
              R$coefficients)[[1]]
  stopifnot(abs(ct["oj:factor(dose_mg)2000", "Pr(>|t|)"] - r$p_value) < 1e-12)
  w <- waldtest(l, lm(len ~ oj + factor(dose_mg), d), vcov = vcovHC(l, type = "HC3"), test = "F")
  r <- Filter(function(x) x$analysis == "one-at-a-time" && x$test == "wald", R$tests)[[1]]
  stopifnot(abs(w$F[2] - r$statistic) < 1e-10, abs(w[["Pr(>F)"]][2] - r$p_value) < 1e-12)
  ci <- coefci(l, vcov. = vcovHC(l, type = "HC1"), level = 0.99)
  r <- Filter(function(x) x$analysis == "joint" && x$term == "oj", RJ$coefficients)[[1]]
  stopifnot(abs(ci["oj", 1] - r$conf_low) < 1e-10)
  "lmtest::coeftest, waldtest (F) and coefci agree"
})

write_reference(list(case = "toothgrowth", checks = chk, formula = "len ~ oj * C(dose_mg)",
                     calls = list(default = list(treatment = "oj"),
                                  joint = list(treatment = "oj", strategy = "joint",
                                               variance = "HC1", conf_level = 0.99)),
                     runs = list(default = R, joint = RJ)),
                "tests/reference/unseen_toothgrowth.json")
