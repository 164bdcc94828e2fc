# Shared helpers of the tests/reference/unseen2_*.R scripts (a second independent cross-check
# of hte_report against R on public data sets that no other reference test uses; checked by
# tests/test_reference_unseen2.py). Sourced by the scripts; run them from the repository root.
#
# Conventions (those the package documents): z = qnorm(1 - (1 - level) / 2); normal p-values;
# ratio scales: estimate = ratio, std_error = SE of the log ratio, CI = exp(log est -/+ z se),
# statistic = log est / se; differences on their own scale.

suppressPackageStartupMessages({
  library(jsonlite)
  library(numDeriv)
})

Z <- qnorm(0.975)

ratio_vals <- function(theta, se, z = Z) {
  list(estimate = exp(theta), std_error = se, conf_low = exp(theta - z * se),
       conf_high = exp(theta + z * se), statistic = theta / se,
       p_value = 2 * pnorm(-abs(theta / se)))
}

diff_vals <- function(est, se, z = Z) {
  list(estimate = est, std_error = se, conf_low = est - z * se, conf_high = est + z * se,
       statistic = est / se, p_value = 2 * pnorm(-abs(est / se)))
}

wald <- function(b, V) {
  b <- as.vector(b)
  W <- as.numeric(t(b) %*% solve(V, b))
  list(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}

# a check of one route against another: stops the script when they disagree
CHECKS <- list()
check <- function(name, a, b, tol = 1e-8) {
  err <- max(abs(a - b) / pmax(abs(b), 1e-300))
  CHECKS[[length(CHECKS) + 1]] <<- list(check = name, max_rel_diff = err)
  if (!is.finite(err) || err > tol) stop(sprintf("check %s failed: %g", name, err))
}

write_reference <- function(out, file) {
  writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), na = "null", null = "null",
                    pretty = TRUE), file)
  cat("wrote", file, "\n")
}
