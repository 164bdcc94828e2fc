# Independent R reference numbers for the proportional-hazards diagnostic figures of the report
# (hte_report.presentation.survival_ph), checked by tests/test_ph_plots.py at rel 1e-6.
#
# Regenerate from the repository root:
#     Rscript tests/reference/ph_plots.R
#
# Reads  examples/actg320/actg320.csv (1151 patients, 96 events; the plan's model is stratified
#        by strat2, Efron ties) and examples/rossi/rossi.csv (432 patients, weekly times with
#        many ties: Efron and Breslow)
# Writes tests/reference/ph_plots.json
# Needs R >= 4.2 with survival (>= 3.0: cox.zph in its score-test form), splines and jsonlite.
#
# Each case is one panel of the figures: the rows of a subgroup (or all rows), its Cox model of
# the treatment alone (stratified as the analysis), ties as stated:
#  - km: survfit(Surv(time, event) ~ 1) within each arm: time, surv, n.event (the log-minus-log
#    plot draws log(-log(surv)) at the times where 0 < surv < 1);
#  - zph: cox.zph(coxph(Surv(time, event) ~ trt [+ strata(s)], ties = ties), transform = "km"):
#    $time, $x (1 - KM(t-), pooled), $y (scaled Schoenfeld residuals, treatment column),
#    $strata, the treatment's p and coefficient;
#  - smooth: what plot.cox.zph(z, df = 4, nsmo = 40) draws (its code, repeated here without
#    plotting): pred.x, yhat and yhat -/+ 2 sqrt(var * h).
# coxph control: eps = 1e-14, iter.max = 200, toler.chol = 1e-15.

suppressPackageStartupMessages({
  library(survival)
  library(splines)
  library(jsonlite)
})

actg <- read.csv("examples/actg320/actg320.csv")
actg$event <- actg$censor          # `censor` is the event indicator (1 = AIDS or death)
actg$trt <- actg$tx
rossi <- read.csv("examples/rossi/rossi.csv")
rossi$time <- rossi$week
rossi$event <- rossi$arrest
rossi$trt <- rossi$fin

ctrl <- coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15)

smooth_zph <- function(z, df = 4, nsmo = 40) {
  xx <- z$x
  yy <- z$y[, 1]
  pred.x <- seq(from = min(xx), to = max(xx), length = nsmo)
  lmat <- ns(c(pred.x, xx), df = df, intercept = TRUE)
  pmat <- lmat[1:nsmo, ]
  xmat <- lmat[-(1:nsmo), ]
  keep <- !is.na(yy)
  qmat <- qr(xmat[keep, ])
  yhat <- pmat %*% qr.coef(qmat, yy[keep])
  bk <- backsolve(qmat$qr[1:df, 1:df], diag(df))
  xtx <- bk %*% t(bk)
  seval <- ((pmat %*% xtx) * pmat) %*% rep(1, df)
  band <- 2 * sqrt(z$var[1, 1] * seval)
  list(x = pred.x, yhat = drop(yhat), lower = drop(yhat - band), upper = drop(yhat + band))
}

one_case <- function(name, d, ties, strata) {
  km <- lapply(c(treated = 1, control = 0), function(a) {
    f <- survfit(Surv(time, event) ~ 1, data = d[d$trt == a, ])
    list(time = f$time, surv = f$surv, n_event = f$n.event)
  })
  form <- if (is.null(strata)) Surv(time, event) ~ trt else
    as.formula(paste("Surv(time, event) ~ trt + strata(", strata, ")"))
  fit <- coxph(form, data = d, ties = ties, control = ctrl)
  z <- cox.zph(fit, transform = "km")
  st <- if (is.null(z$strata)) rep("", length(z$time)) else as.character(z$strata)
  list(name = name, ties = ties, strata = if (is.null(strata)) "" else strata,
       n = nrow(d), km = km,
       zph = list(time = z$time, x = z$x, y = unname(z$y[, 1]), strata = st,
                  p = unname(z$table["trt", "p"]), coef = unname(coef(fit)["trt"]),
                  var = z$var[1, 1]),
       smooth = smooth_zph(z))
}

cases <- list(
  one_case("actg320: all", actg, "efron", "strat2"),
  one_case("actg320: sex 1", actg[actg$sex == 1, ], "efron", "strat2"),
  one_case("actg320: sex 2", actg[actg$sex == 2, ], "efron", "strat2"),
  one_case("actg320: ivdrug_ever 0", actg[actg$ivdrug_ever == 0, ], "efron", "strat2"),
  one_case("actg320: ivdrug_ever 1", actg[actg$ivdrug_ever == 1, ], "efron", "strat2"),
  one_case("rossi: all, efron", rossi, "efron", NULL),
  one_case("rossi: all, breslow", rossi, "breslow", NULL),
  one_case("rossi: wexp 0, breslow", rossi[rossi$wexp == 0, ], "breslow", NULL),
  one_case("rossi: all, strata(wexp)", rossi, "efron", "wexp")
)

writeLines(toJSON(list(
  R = R.version.string, survival = as.character(packageVersion("survival")),
  cases = cases), digits = NA, auto_unbox = TRUE, pretty = FALSE),
  "tests/reference/ph_plots.json")
cat("wrote tests/reference/ph_plots.json\n")
