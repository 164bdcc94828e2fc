# Issue 16: profile-likelihood confidence intervals (R's confint(glm), MASS profile) for the
# coefficients of a logit and a log-binomial model and for the conditional OR / RR in each
# level of a binary modifier (the treatment coefficient after releveling the modifier).
# Besides confint() (which interpolates the profile on a grid), the bounds are found as exact
# roots of 2 (l_max - l_profile(b)) = qchisq(0.95, 1) with uniroot on glm fits with an offset.
#   rossi.csv: arrest ~ fin * factor(wexp) + age + prio, logit
#   nsw.csv:   emp (re78 > 0) ~ treat * factor(black) + factor(nodegree), log-binomial
# Regenerate from the repository root:  Rscript tests/reference/issue16_profile.R
# Writes tests/reference/issue16_profile.json. Needs MASS, jsonlite.
suppressPackageStartupMessages({library(MASS); library(jsonlite)})
dd <- "tests/reference/data"
CTRL <- glm.control(epsilon = 1e-14, maxit = 500)
Q <- qchisq(0.95, 1)
rossi <- read.csv(file.path(dd, "rossi.csv"))
nsw <- read.csv(file.path(dd, "nsw.csv")); nsw$emp <- as.integer(nsw$re78 > 0)

exact_bounds <- function(fit, k) {
  # constrained fits start from the solution at the nearest value already solved, walking out
  # from the estimate in small steps, so every log-binomial fit starts inside (0, 1)
  X <- model.matrix(fit); y <- fit$y; fam <- family(fit)
  solved <- list(list(b = unname(coef(fit)[k]), start = unname(coef(fit)[-k])))
  ll_at <- function(b) {
    near <- solved[[which.min(sapply(solved, function(s) abs(s$b - b)))]]
    g <- suppressWarnings(glm.fit(X[, -k, drop = FALSE], y, family = fam, offset = X[, k] * b,
                                  start = near$start, control = CTRL))
    if (!g$converged || any(g$fitted.values >= 1)) stop("constrained fit failed at ", b)
    solved[[length(solved) + 1]] <<- list(b = b, start = unname(coef(g)))
    -g$aic / 2 + ncol(X) - 1  # binomial aic = -2 loglik + 2 rank
  }
  ll_hat <- as.numeric(logLik(fit))
  f <- function(b) 2 * (ll_hat - ll_at(b)) - Q
  b <- unname(coef(fit)[k]); se <- unname(sqrt(diag(vcov(fit)))[k])
  sapply(c(-1, 1), function(s) {
    inner <- b; outer <- b + s * se / 4
    while (f(outer) < 0) { inner <- outer; outer <- outer + s * se / 4 }
    uniroot(f, sort(c(inner, outer)), tol = 1e-13)$root
  })
}

record <- function(fit, extra = list()) {
  ci <- suppressMessages(confint(fit))
  ex <- t(sapply(seq_along(coef(fit)), function(k) exact_bounds(fit, k)))
  c(list(terms = names(coef(fit)), estimate = unname(coef(fit)),
         confint_low = unname(ci[, 1]), confint_high = unname(ci[, 2]),
         exact_low = unname(ex[, 1]), exact_high = unname(ex[, 2])), extra)
}

conditional <- function(make, level_sets, term) {
  # the treatment coefficient with each level of the modifier as its reference
  lapply(level_sets, function(levels) {
    fit <- make(levels)
    k <- which(names(coef(fit)) == term)
    ex <- exact_bounds(fit, k)
    ci <- suppressMessages(confint(fit, term))
    list(level = levels[1], estimate = exp(unname(coef(fit)[k])),
         confint_low = exp(unname(ci[1])), confint_high = exp(unname(ci[2])),
         exact_low = exp(ex[1]), exact_high = exp(ex[2]))
  })
}

out <- list()
mk_r <- function(levels) glm(arrest ~ fin * factor(wexp, levels = levels) + age + prio,
                             family = binomial(), data = rossi, control = CTRL)
out[[1]] <- c(list(case = "rossi", model = "logit", treatment = "fin",
                   formula = "arrest ~ fin * C(wexp) + age + prio", modifier = "wexp"),
              record(mk_r(c(0, 1)),
                     list(conditional = conditional(mk_r, list(c(0, 1), c(1, 0)), "fin"))))
mk_n <- function(levels) glm(emp ~ treat * factor(black, levels = levels) + factor(nodegree),
                             family = binomial(link = "log"), data = nsw, control = CTRL,
                             start = c(log(mean(nsw$emp)), 0, 0, 0, 0))
out[[2]] <- c(list(case = "nsw", model = "log-binomial", treatment = "treat",
                   formula = "emp ~ treat * C(black) + C(nodegree)", modifier = "black"),
              record(mk_n(c(0, 1)),
                     list(conditional = conditional(mk_n, list(c(0, 1), c(1, 0)), "treat"))))
writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_profile.R;",
                                            R.version.string, "; MASS", packageVersion("MASS")),
                       fits = out), digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/issue16_profile.json")
