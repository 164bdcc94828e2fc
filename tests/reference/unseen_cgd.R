# Reference numbers for tests/test_reference_unseen.py: survival::cgd0 (Fleming & Harrington,
# Counting Processes and Survival Analysis, 1991; the International CGD Cooperative Study Group
# trial of gamma interferon in chronic granulomatous disease, NEJM 1991; 128 patients, 13
# centres; survival: LGPL >= 2). Count outcome `infections` = number of serious infections
# during follow-up (non-missing etime1..etime7, all <= futime), exposure `years` = futime /
# 365.25, randomized treatment `treat` (1 = gamma interferon). Modifiers inherit (1 X-linked,
# 2 autosomal recessive; factor), height (cm, continuous), propylac (prophylactic antibiotics, 1 yes,
# 2 no; factor); no adjustment covariates. Working models "identity-poisson" (rate
# difference, mean = years * x'b) and "poisson" (log link, offset log(years)); rates per
# person-year (per unit exposure).
#  - default call: one-at-a-time, variance clustered on `center` (vcovCL, HC1, cadjust).
#  - joint call: strategy = "joint", model-based variance (LR tests; the identity-link reduced
#    joint model has no fit with positive rates in R either: statistic NA).
# (hos.cat is not used: its level "US:NIH" is a single centre, so its cluster variance is 0.
# age is not used: the identity-link model treat * age has its MLE on the boundary, a fitted
# rate of 1e-11 for the oldest treated patient, where Wald SEs are not meaningful.)
# Writes tests/reference/data/unseen_cgd.csv and tests/reference/unseen_cgd.json.
#   Rscript tests/reference/unseen_cgd.R
source("tests/reference/unseen_common.R")
suppressPackageStartupMessages(library(survival))

d0 <- survival::cgd0
et <- as.matrix(d0[, paste0("etime", 1:7)])
stopifnot(all(is.na(et) | et <= d0$futime))
d0$infections <- rowSums(!is.na(et))
d0$years <- d0$futime / 365.25
keep <- c("id", "center", "treat", "sex", "age", "height", "weight", "inherit", "propylac", "futime", "years",
          "infections")
csv <- "tests/reference/data/unseen_cgd.csv"
write.csv(d0[, keep], csv, row.names = FALSE)
d <- read.csv(csv)
stopifnot(nrow(d) == 128, all(d$infections == d0$infections))

mods <- c(inherit = "factor", height = "numeric", propylac = "factor")
models_cl <- list(list(model = "identity-poisson", variance = "CL"),
                  list(model = "poisson", variance = "CL"))
models_model <- list(list(model = "identity-poisson", variance = "model"),
                     list(model = "poisson", variance = "model"))
R <- run_analysis(d, "infections", "treat", mods, character(), "count", models_cl,
                  expo = "years", cluster = "center")
RJ <- run_analysis(d, "infections", "treat", mods, character(), "count", models_model,
                   expo = "years", strategy = "joint")

chk <- local({
  # second route: the log-link fit and its cluster SE through glm's formula interface
  g <- glm(infections ~ treat * height + offset(log(years)), poisson, d, control = CTRL)
  se <- sqrt(diag(vcovCL(g, cluster = ~center, type = "HC1", cadjust = TRUE)))[["treat:height"]]
  r <- Filter(function(x) x$analysis == "one-at-a-time" && x$modifier == "height" &&
                x$term == "treat:height" && x$model == "poisson-CL(center)", R$coefficients)[[1]]
  stopifnot(abs(se - r$std_error) < 1e-12 * max(1, se))
  # standardized rate ratio in inherit = 2 by predict(type = "link") at years = 1
  g2 <- glm(infections ~ treat * factor(inherit) + offset(log(years)), poisson, d, control = CTRL)
  s <- d[d$inherit == 2, ]; s$years <- 1
  rr <- mean(predict(g2, transform(s, treat = 1), type = "response")) /
    mean(predict(g2, transform(s, treat = 0), type = "response"))
  r <- Filter(function(x) x$analysis == "one-at-a-time" && x$modifier == "inherit" &&
                identical(x$level, "2") && x$scale == "RateRatio" && x$method == "standardized" &&
                x$model == "poisson-CL(center)", R$subgroups)[[1]]
  stopifnot(abs(rr / r$estimate - 1) < 1e-10)
  "glm + vcovCL and predict() agree"
})

write_reference(list(case = "cgd", checks = chk,
                     formula = "infections ~ treat * (C(inherit) + height + C(propylac))",
                     calls = list(default = list(treatment = "treat", exposure = "years",
                                                 variance = list(cluster = "center")),
                                  joint = list(treatment = "treat", exposure = "years",
                                               variance = "model", strategy = "joint")),
                     runs = list(default = R, joint = RJ)),
                "tests/reference/unseen_cgd.json")
