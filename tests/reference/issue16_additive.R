# Issue 16: joint-exposure ratios (R10, R01, R11), the multiplicative interaction exp(b3) and
# RERI / AP / SI (Hosmer & Lemeshow 1992 delta method, as epiR::epi.interaction(param =
# "product")), from R's glm coefficients and covariances, in closed form:
#   rossi.csv: arrest ~ fin * factor(wexp) + age + prio
#   nsw.csv:   employed in 1978 (re78 > 0) ~ treat * factor(black) + age + educ
# for a logit model (model-based vcov) and a modified Poisson model (sandwich HC0).
# Regenerate from the repository root:  Rscript tests/reference/issue16_additive.R
# Writes tests/reference/issue16_additive.json. Needs sandwich, jsonlite.
suppressPackageStartupMessages({library(sandwich); library(jsonlite)})
dd <- "tests/reference/data"
CTRL <- glm.control(epsilon = 1e-15, maxit = 500)
Z <- qnorm(0.975)
rossi <- read.csv(file.path(dd, "rossi.csv"))
nsw <- read.csv(file.path(dd, "nsw.csv"))
nsw$emp <- as.integer(nsw$re78 > 0)
cases <- list(
  list(case = "rossi", data = rossi, f = arrest ~ fin * factor(wexp) + age + prio,
       formula = "arrest ~ fin * C(wexp) + age + prio", treatment = "fin", modifier = "wexp",
       t = "fin", m = "factor(wexp)1", tm = "fin:factor(wexp)1"),
  list(case = "nsw", data = nsw, f = emp ~ treat * factor(black) + age + educ,
       formula = "emp ~ treat * C(black) + age + educ", treatment = "treat",
       modifier = "black", t = "treat", m = "factor(black)1", tm = "treat:factor(black)1"))
out <- list()
for (cs in cases) {
  for (model in c("logit", "modified-poisson")) {
    if (model == "logit") {
      fit <- glm(cs$f, family = binomial(), data = cs$data, control = CTRL); V <- vcov(fit)
      label <- "OR"
    } else {
      fit <- glm(cs$f, family = poisson(), data = cs$data, control = CTRL)
      V <- vcovHC(fit, type = "HC0"); label <- "RR"
    }
    idx <- c(cs$t, cs$m, cs$tm)
    b <- coef(fit)[idx]; S <- V[idx, idx]
    ratio <- function(g) {  # exp(g'b) with a log-scale interval
      e <- sum(g * b); se <- sqrt(as.numeric(t(g) %*% S %*% g))
      list(estimate = exp(e), std_error = se, conf_low = exp(e - Z * se),
           conf_high = exp(e + Z * se))
    }
    r10 <- exp(b[1]); r01 <- exp(b[2]); r11 <- exp(sum(b))
    reri <- r11 - r10 - r01 + 1
    g <- c(r11 - r10, r11 - r01, r11); se <- sqrt(as.numeric(t(g) %*% S %*% g))
    ap <- reri / r11
    ga <- c((r11 - r10) / r11 - ap, (r11 - r01) / r11 - ap, 1 - ap)
    sea <- sqrt(as.numeric(t(ga) %*% S %*% ga))
    den <- r10 + r01 - 2; si <- (r11 - 1) / den
    gs <- c(r11 / (r11 - 1) - r10 / den, r11 / (r11 - 1) - r01 / den, r11 / (r11 - 1))
    ses <- sqrt(as.numeric(t(gs) %*% S %*% gs))
    rows <- list()
    rows[[paste0("RR10_", label)]] <- ratio(c(1, 0, 0))
    rows[[paste0("RR01_", label)]] <- ratio(c(0, 1, 0))
    rows[[paste0("RR11_", label)]] <- ratio(c(1, 1, 1))
    rows[[paste0("multiplicative_", label)]] <- ratio(c(0, 0, 1))
    rows[[paste0("RERI_", label)]] <- list(estimate = unname(reri), std_error = se,
                                           conf_low = unname(reri - Z * se),
                                           conf_high = unname(reri + Z * se))
    rows[[paste0("AP_", label)]] <- list(estimate = unname(ap), std_error = sea,
                                         conf_low = unname(ap - Z * sea),
                                         conf_high = unname(ap + Z * sea))
    if (is.finite(log(si)))
      rows[[paste0("SI_", label)]] <- list(estimate = unname(si), std_error = ses,
                                           conf_low = unname(exp(log(si) - Z * ses)),
                                           conf_high = unname(exp(log(si) + Z * ses)))
    out[[length(out) + 1]] <- list(case = cs$case, formula = cs$formula,
                                   treatment = cs$treatment, modifier = cs$modifier,
                                   model = model, n = nobs(fit), measures = rows)
  }
}
writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_additive.R;",
                                            R.version.string), fits = out),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/issue16_additive.json")
