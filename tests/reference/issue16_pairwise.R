# Issue 16: the difference between two subgroup effects with its CI, for every pair of levels
# of a three-level modifier: standardized (g-computation) RD and RR of a linear probability
# model (lm, HC3 sandwich), t intervals on the residual df (coeftest convention), by hand.
#   rossi.csv: arrest ~ fin * factor(pg) + age, pg = 0 (no prior convictions), 1 (1-2), 2 (3+)
# Regenerate from the repository root:  Rscript tests/reference/issue16_pairwise.R
# Writes tests/reference/issue16_pairwise.json. Needs sandwich, jsonlite.
suppressPackageStartupMessages({library(sandwich); library(jsonlite)})
rossi <- read.csv("tests/reference/data/rossi.csv")
rossi$pg <- ifelse(rossi$prio == 0, 0, ifelse(rossi$prio <= 2, 1, 2))
fit <- lm(arrest ~ fin * factor(pg) + age, data = rossi)
V <- vcovHC(fit, type = "HC3"); b <- coef(fit); df <- df.residual(fit)
X1 <- model.matrix(fit, data = transform(rossi, fin = 1))
X0 <- model.matrix(fit, data = transform(rossi, fin = 0))
crit <- qt(0.975, df)
rows <- list()
for (scale in c("RD", "RR")) {
  theta <- numeric(3); G <- matrix(0, 3, length(b))
  for (l in 0:2) {
    g1 <- colMeans(X1[rossi$pg == l, ]); g0 <- colMeans(X0[rossi$pg == l, ])
    m1 <- sum(g1 * b); m0 <- sum(g0 * b)
    if (scale == "RD") { theta[l + 1] <- m1 - m0; G[l + 1, ] <- g1 - g0 }
    else { theta[l + 1] <- log(m1 / m0); G[l + 1, ] <- g1 / m1 - g0 / m0 }
  }
  for (a in 1:2) for (c in (a + 1):3) {
    g <- G[c, ] - G[a, ]; d <- theta[c] - theta[a]
    se <- sqrt(as.numeric(t(g) %*% V %*% g))
    tr <- if (scale == "RR") exp else identity
    rows[[length(rows) + 1]] <- list(scale = scale, level = c - 1, reference = a - 1,
                                     estimate = tr(d), std_error = se,
                                     conf_low = tr(d - crit * se), conf_high = tr(d + crit * se),
                                     p_value = 2 * pt(-abs(d / se), df), df = df)
  }
}
writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_pairwise.R;",
                                            R.version.string), rows = rows),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/issue16_pairwise.json")
