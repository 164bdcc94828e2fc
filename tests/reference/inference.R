# Reference numbers for multiplicity adjustment and the Gail-Simon test.
# Regenerate from the repository root:  Rscript tests/reference/inference.R
# Writes tests/reference/inference.json.
library(jsonlite)
p <- c(0.0021, 0.013, 0.041, 0.047, 0.18, 0.62, 0.0004, 0.09)
adj <- lapply(c(holm = "holm", hochberg = "hochberg", bonferroni = "bonferroni", BH = "BH"),
              function(m) p.adjust(p, method = m))

# Gail & Simon (1985): Q- = sum (D_i/S_i)^2 I(D_i > 0), Q+ = sum (D_i/S_i)^2 I(D_i < 0),
# P(min(Q-, Q+) >= c) = sum_{h=1}^{I-1} dbinom(h, I-1, 1/2) * P(chisq_h >= c)
gs_p <- function(q, I) sum(sapply(1:(I - 1), function(h) dbinom(h, I - 1, 0.5) * pchisq(q, h, lower.tail = FALSE)))
crit <- sapply(2:8, function(I) uniroot(function(c) gs_p(c, I) - 0.05, c(0.01, 50), tol = 1e-14)$root)
examples <- list(
  list(d = c(-0.20, -0.05, 0.15), s = c(0.08, 0.07, 0.09)),
  list(d = c(-0.30, 0.25), s = c(0.10, 0.12)),
  list(d = c(log(0.6), log(0.9), log(1.4), log(1.1)), s = c(0.2, 0.15, 0.18, 0.25))
)
gs <- lapply(examples, function(e) {
  z2 <- (e$d / e$s)^2
  qm <- sum(z2[e$d > 0]); qp <- sum(z2[e$d < 0]); q <- min(qm, qp)
  list(d = e$d, s = e$s, q_minus = qm, q_plus = qp, q = q, p_value = gs_p(q, length(e$d)))
})
out <- list(generated_by = paste("tests/reference/inference.R;", R.version.string),
            p = p, adjusted = adj, gail_simon_critical_05 = list(I = 2:8, c = crit),
            gail_simon = gs)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/inference.json")
