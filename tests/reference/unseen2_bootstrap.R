# The bootstrap of standardized effects (hte_report.bootstrap) checked against R replicate by
# replicate on data/unseen2_respiratory.csv (HSAUR3::respiratory, see unseen2_respiratory.R).
# A bootstrap has no closed form, but each replicate has: given the resampling design (the
# frequency weights written by unseen2_bootstrap_weights.py from the package's documented
# seeding scheme, and checked against the package), every replicate's effects are ordinary
# weighted fits. Checked by tests/test_reference_unseen2.py.
#
# Regenerate from the repository root (after unseen2_respiratory.R):
#   python tests/reference/unseen2_bootstrap_weights.py
#   Rscript tests/reference/unseen2_bootstrap.R   -> tests/reference/unseen2_bootstrap.json
#
# Package call: bootstrap("poor4 ~ treat * C(centre2) + poor0 + male", d, treatment="treat",
#   B=40, seed=7, jackknife_groups=8, keep_replicates=True) (the binary default models ols,
#   modified-poisson, logit).
# Per sample (40 replicates r1..r40, the full sample, 8 grouped-jackknife samples j1..j8) with
# frequency weights w: lm(weights = w), glm(poisson, weights = w), glm(binomial, weights = w);
# standardized means per group (all patients, centre2 = 0, 1): sum(w h(x_i(t)'b)) / sum(w)
# over the group's rows, t = 1, 0; RD, RR (every model), OR (logit). Summaries over the 40
# replicates: boot_se = sd (of the log for RR / OR), percentile interval quantile(type = 7) at
# 0.025 / 0.975; BCa (Efron 1987): z0 = qnorm(mean(reps < full)), acceleration
# a = sum(d^3) / (6 sum(d^2)^1.5), d = mean(jack) - jack, limits quantile(type = 7) at
# pnorm(z0 + (z0 + z_alpha) / (1 - a (z0 + z_alpha))).
source("tests/reference/unseen2_common.R")

d <- read.csv("tests/reference/data/unseen2_respiratory.csv")
W <- read.csv("tests/reference/data/unseen2_boot_weights.csv")
B <- sum(grepl("^r", names(W))); G <- sum(grepl("^j", names(W)))
f <- poor4 ~ treat * factor(centre2) + poor0 + male
GC <- glm.control(epsilon = 1e-14, maxit = 100)
X1 <- model.matrix(f, transform(d, treat = 1)); X0 <- model.matrix(f, transform(d, treat = 0))
groups <- list(c("All patients", ""), c("centre2", "0"), c("centre2", "1"))
masks <- list(rep(TRUE, nrow(d)), d$centre2 == 0, d$centre2 == 1)

effects_of <- function(w) {
  dd <- d[w > 0, ]; dd$ww <- w[w > 0]
  fits <- list(ols = lm(f, dd, weights = ww),
               mp = glm(f, poisson(), dd, weights = ww, control = GC),
               logit = glm(f, binomial(), dd, weights = ww, control = GC))
  for (m in c("mp", "logit")) stopifnot(fits[[m]]$converged, !fits[[m]]$boundary)
  out <- c()
  for (m in names(fits)) {
    b <- coef(fits[[m]])
    h <- switch(m, ols = identity, mp = exp, logit = plogis)
    p1 <- h(as.vector(X1 %*% b)); p0 <- h(as.vector(X0 %*% b))
    mu <- sapply(masks, function(k) c(sum(w[k] * p1[k]) / sum(w[k]), sum(w[k] * p0[k]) / sum(w[k])))
    sc <- list(RD = mu[1, ] - mu[2, ], RR = mu[1, ] / mu[2, ])
    if (m == "logit") sc$OR <- (mu[1, ] / (1 - mu[1, ])) / (mu[2, ] / (1 - mu[2, ]))
    for (s in names(sc)) out <- c(out, setNames(sc[[s]], paste(m, s, seq_along(masks))))
  }
  out
}

full <- effects_of(rep(1, nrow(d)))
reps <- t(sapply(seq_len(B), function(b) effects_of(W[[paste0("r", b)]])))
jack <- t(sapply(seq_len(G), function(k) effects_of(W[[paste0("j", k)]])))
label <- c(ols = "ols-HC3", mp = "modified-poisson-HC0", logit = "logit")
za <- qnorm(c(0.025, 0.975))
rows <- lapply(seq_along(full), function(j) {
  key <- strsplit(names(full)[j], " ")[[1]]
  ratio <- key[2] != "RD"
  r <- reps[, j]
  prop <- min(max(mean(r < full[j]), 1e-10), 1 - 1e-10)
  z0 <- qnorm(prop)
  dj <- mean(jack[, j]) - jack[, j]
  a <- sum(dj^3) / (6 * sum(dj^2)^1.5)
  adj <- pnorm(z0 + (z0 + za) / (1 - a * (z0 + za)))
  g <- groups[[as.integer(key[3])]]
  list(modifier = g[1], level = g[2], scale = key[2], model = label[[key[1]]],
       estimate = unname(full[j]), boot_se = sd(if (ratio) log(r) else r),
       conf_low_percentile = unname(quantile(r, 0.025, type = 7)),
       conf_high_percentile = unname(quantile(r, 0.975, type = 7)),
       conf_low_bca = unname(quantile(r, adj[1], type = 7)),
       conf_high_bca = unname(quantile(r, adj[2], type = 7)), replicates = unname(r))
})
write_reference(list(
  generated_by = sprintf("tests/reference/unseen2_bootstrap.R; %s", R.version.string),
  formula = "poor4 ~ treat * C(centre2) + poor0 + male",
  kwargs = list(treatment = "treat", B = B, seed = 7, jackknife_groups = G),
  rows = rows), "tests/reference/unseen2_bootstrap.json")
