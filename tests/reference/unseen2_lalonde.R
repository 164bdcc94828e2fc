# Observational estimators (g-computation, IPW, AIPW, overlap weights) checked against R on
# MatchIt::lalonde (Dehejia & Wahba 1999: the 185 NSW treated men and 429 PSID comparison men;
# job training, not randomized). No other reference test uses these rows (nsw.csv is the
# experimental sample with its own controls). Checked by tests/test_reference_unseen2.py.
#
# Regenerate from the repository root: Rscript tests/reference/unseen2_lalonde.R
#   writes tests/reference/data/unseen2_lalonde.csv (MatchIt 4.5.1's lalonde, plus employed78 =
#   re78 > 0) and tests/reference/unseen2_lalonde.json. Needs MatchIt (Debian r-cran-matchit),
#   survey, numDeriv, jsonlite.
#
# The package calls (hte_report.estimation.observational.fit_observational), confounders
#   age, educ, C(race), married, nodegree, re74, re75:
#   "trimmed": outcome re78 (continuous: MD), modifiers married, nodegree, race, trim="crump";
#   "untrimmed": outcome employed78 (binary: RD, RR, OR), modifiers married, race,
#                threshold=0.01, max_outside=0.5 (all 614 men; extreme weights).
#   estimators gcomp, ipw, aipw, overlap.
#
# Written here from the definitions in the package's documentation, not from its code:
#  * Crump et al. (2009) alpha from the overall propensity model on all rows: h = 1/(e(1-e));
#    alpha = 0 if max h <= 2 mean h, else gamma solves gamma = 2 mean(h | h <= gamma) (found by
#    uniroot on the step function's crossing), alpha = 1/2 - sqrt(1/4 - 1/gamma); rows with e
#    outside [alpha, 1 - alpha] are dropped and every model refitted.
#  * Per analysis (overall; each modifier m): propensity glm(treat ~ confounders, binomial)
#    (m is already a confounder); outcome glm(y ~ treat * factor(m) + other confounders)
#    (overall y ~ treat + confounders), gaussian or binomial.
#  * Means per level and arm: gcomp = mean of predict(outcome model, treat = a); IPW (Hajek)
#    and overlap (weights 1 - e / e) from survey::svyglm(y ~ 0 + arm:level cells); AIPW
#    mean(m_a + 1{A = a} (Y - m_a) / P(A = a | X)).
#  * SEs: the stacked estimating functions psi_i(theta) of theta = (propensity coefficients,
#    outcome coefficients, means) written out here; bread J = numDeriv::jacobian of
#    sum_i psi_i(theta) (Richardson), meat B = sum_i psi_i psi_i', V = J^-1 B J^-T; effects by
#    the delta method (ratio scales on the log scale), Wald test of equal effects across levels
#    (K - 1 differences from the first level), interaction effects (level vs first level:
#    difference of MDs / RDs, ratio of RRs / ORs).
#  * Positivity per level: propensity range per arm, share outside [threshold, 1 - threshold],
#    ESS (sum w)^2 / sum w^2 per arm with w = 1/e, 1/(1-e); balance: SMD of each propensity
#    design column (unweighted; weighted by P(A=a)/P(A=a|X)) over the unweighted pooled SD
#    sqrt((s1^2 + s0^2)/2), within each level.
source("tests/reference/unseen2_common.R")
suppressPackageStartupMessages({library(survey); library(MatchIt)})

data("lalonde", package = "MatchIt")
raw <- lalonde
raw$employed78 <- as.integer(raw$re78 > 0)
rownames(raw) <- NULL
write.csv(raw, "tests/reference/data/unseen2_lalonde.csv", row.names = FALSE)
D <- read.csv("tests/reference/data/unseen2_lalonde.csv", stringsAsFactors = FALSE)
CONF <- c("age", "educ", "factor(race)", "married", "nodegree", "re74", "re75")
EST <- c("gcomp", "ipw", "aipw", "overlap")
GC <- glm.control(epsilon = 1e-14, maxit = 100)
expit <- function(x) 1 / (1 + exp(-x))
pyterm <- function(x) {
  x <- gsub("factor\\(([a-z0-9]+)\\)([a-z0-9]+)", "C(\\1)[T.\\2]", x)
  x[x == "(Intercept)"] <- "Intercept"
  x
}

ps_fit <- function(d) glm(as.formula(paste("treat ~", paste(CONF, collapse = " + "))), binomial(),
                          data = d, control = GC)

crump_alpha <- function(e) {
  h <- 1 / (e * (1 - e))
  if (max(h) <= 2 * mean(h)) return(0)
  f <- function(g) g - 2 * mean(h[h <= g])    # increasing between jumps; crosses 0 once
  hs <- sort(h)
  # the root lies where f changes sign: bracket it between consecutive h values
  s <- sapply(hs, f)
  k <- which(s >= 0)[1]
  lo <- if (k > 1) hs[k - 1] else 0
  g <- if (s[k] == 0) hs[k] else 2 * mean(h[h <= lo])  # on [h_(k-1), h_k) f is g - const
  stopifnot(g >= lo, g < hs[k] || s[k] == 0)
  0.5 - sqrt(0.25 - 1 / g)
}

analyse <- function(d, y, mod, binary, threshold, max_outside) {
  g <- if (is.null(mod)) rep("All patients", nrow(d)) else as.character(d[[mod]])
  levs <- sort(unique(g))
  conf_o <- if (is.null(mod)) CONF else setdiff(CONF, c(mod, sprintf("factor(%s)", mod)))
  out_rhs <- if (is.null(mod)) paste(c("treat", CONF), collapse = " + ") else
    paste(c(sprintf("treat * factor(%s)", mod), conf_o), collapse = " + ")
  fam <- if (binary) binomial() else gaussian()
  ps <- ps_fit(d)
  om <- glm(as.formula(paste(y, "~", out_rhs)), family = fam, data = d, control = GC)
  X <- model.matrix(ps); Zm <- model.matrix(om)
  Z1 <- model.matrix(terms(om), transform(d, treat = 1))
  Z0 <- model.matrix(terms(om), transform(d, treat = 0))
  A <- d$treat; Y <- d[[y]]; e <- fitted(ps)
  h <- if (binary) expit else identity
  m1 <- as.vector(h(Z1 %*% coef(om))); m0 <- as.vector(h(Z0 %*% coef(om)))
  check("predict m1", m1, unname(predict(om, transform(d, treat = 1), type = "response")), 1e-10)
  # survey: Hajek IPW and overlap-weighted means per arm x level
  cell <- factor(paste(A, g, sep = ":"))
  svy_mu <- function(w) {
    des <- svydesign(ids = ~1, weights = ~w, data = data.frame(Y = Y, cell = cell, w = w))
    coef(svyglm(Y ~ 0 + cell, design = des))
  }
  ipw_mu <- svy_mu(ifelse(A == 1, mean(A) / e, (1 - mean(A)) / (1 - e)))
  ovl_mu <- svy_mu(ifelse(A == 1, 1 - e, e))
  keys <- expand.grid(arm = c(1, 0), lv = levs, k = EST, stringsAsFactors = FALSE)[, 3:1]
  mu <- sapply(seq_len(nrow(keys)), function(j) {
    k <- keys$k[j]; lv <- keys$lv[j]; a <- keys$arm[j]; i <- g == lv
    ma <- if (a == 1) m1 else m0
    switch(k, gcomp = mean(ma[i]),
           ipw = unname(ipw_mu[paste0("cell", a, ":", lv)]),
           overlap = unname(ovl_mu[paste0("cell", a, ":", lv)]),
           aipw = mean((ma + (A == a) * (Y - ma) / (if (a == 1) e else 1 - e))[i]))
  })
  p <- ncol(X); q <- ncol(Zm)
  psi <- function(th) {
    gam <- th[1:p]; bet <- th[p + 1:q]; mus <- th[-(1:(p + q))]
    ee <- expit(as.vector(X %*% gam))
    mm <- as.vector(h(Zm %*% bet)); mm1 <- as.vector(h(Z1 %*% bet)); mm0 <- as.vector(h(Z0 %*% bet))
    cols <- lapply(seq_len(nrow(keys)), function(j) {
      k <- keys$k[j]; a <- keys$arm[j]; I <- as.numeric(g == keys$lv[j])
      ma <- if (a == 1) mm1 else mm0
      pa <- if (a == 1) ee else 1 - ee
      switch(k, gcomp = I * (ma - mus[j]),
             ipw = I * (A == a) / pa * (Y - mus[j]),
             overlap = I * (A == a) * (1 - pa) * (Y - mus[j]),
             aipw = I * (ma + (A == a) * (Y - ma) / pa - mus[j]))
    })
    cbind(X * (A - ee), Zm * (Y - mm), do.call(cbind, cols))
  }
  th <- c(coef(ps), coef(om), mu)
  stopifnot(max(abs(colSums(psi(th)) / nrow(d))) < 1e-8 * max(1, abs(Y)))
  J <- jacobian(function(x) colSums(psi(x)), th)
  P <- psi(th)
  # dollars (re74, re75, re78) against 0/1 columns: equilibrate rows and columns before solving
  r <- 1 / sqrt(rowSums(J^2)); cc <- 1 / sqrt(colSums((J * r)^2))
  Ji <- cc * t(r * t(solve(r * t(cc * t(J)))))
  stopifnot(kappa(r * t(cc * t(J)), exact = TRUE) < 1e8)
  V <- Ji %*% crossprod(P) %*% t(Ji)
  base <- p + q
  scales <- if (binary) c("RD", "RR", "OR") else "MD"
  effects <- list(); het <- list(); inter <- list(); pos <- list(); bal <- list()
  scale_of <- function(s, m1, m0) switch(s, MD = , RD = list(v = m1 - m0, g = c(1, -1)),
    RR = list(v = log(m1 / m0), g = c(1 / m1, -1 / m0)),
    OR = list(v = qlogis(m1) - qlogis(m0), g = c(1 / (m1 * (1 - m1)), -1 / (m0 * (1 - m0)))))
  for (k in EST) for (s in scales) {
    th_l <- c(); G <- NULL
    for (lv in levs) {
      j1 <- which(keys$k == k & keys$lv == lv & keys$arm == 1)
      j0 <- which(keys$k == k & keys$lv == lv & keys$arm == 0)
      i <- g == lv
      rec <- list(estimator = k, modifier = if (is.null(mod)) "All patients" else mod,
                  level = lv, scale = s, n = sum(i), n_treated = sum(A[i] == 1),
                  n_control = sum(A[i] == 0))
      # a counterfactual risk within 1e-8 of 0 (RR, OR) or 1 (OR): not estimable (the
      # package's documented boundary; here an outcome-model cell with quasi-separation)
      edge <- s != "MD" && s != "RD" && (min(mu[c(j1, j0)]) <= 1e-8 ||
                                          (s == "OR" && max(mu[c(j1, j0)]) >= 1 - 1e-8))
      if (edge) {
        effects[[length(effects) + 1]] <- c(rec, list(mu1 = NA, mu0 = NA, estimate = NA,
                                                      std_error = NA, not_estimable = TRUE))
        next
      }
      sc <- scale_of(s, mu[j1], mu[j0])
      gg <- rep(0, length(th)); gg[base + c(j1, j0)] <- sc$g
      se <- sqrt(as.numeric(t(gg) %*% V %*% gg))
      vals <- if (s %in% c("RR", "OR")) ratio_vals(sc$v, se) else diff_vals(sc$v, se)
      effects[[length(effects) + 1]] <- c(rec, list(mu1 = mu[j1], mu0 = mu[j0]), vals)
      th_l <- c(th_l, sc$v); G <- rbind(G, gg); names(th_l)[length(th_l)] <- lv
    }
    if (!is.null(mod)) {
      lv_ok <- names(th_l)
      K <- length(lv_ok); C <- cbind(-1, diag(K - 1))
      W <- C %*% G %*% V %*% t(G) %*% t(C)
      het[[length(het) + 1]] <- c(list(estimator = k, modifier = mod, scale = s, levels = K),
                                  wald(C %*% th_l, W))
      for (i in 2:K) {
        dv <- th_l[i] - th_l[1]; se <- sqrt(W[i - 1, i - 1])
        vals <- if (s %in% c("RR", "OR")) ratio_vals(dv, se) else diff_vals(dv, se)
        inter[[length(inter) + 1]] <- c(list(estimator = k, modifier = mod, level = lv_ok[i],
                                             reference = lv_ok[1], scale = s), vals)
      }
    }
  }
  w_ess <- ifelse(A == 1, 1 / e, 1 / (1 - e))
  w_bal <- ifelse(A == 1, mean(A) / e, (1 - mean(A)) / (1 - e))
  for (lv in levs) {
    i <- g == lv; t1 <- i & A == 1; t0 <- i & A == 0
    ess <- function(r) sum(w_ess[r])^2 / sum(w_ess[r]^2)
    outside <- e[i] < threshold | e[i] > 1 - threshold
    pos[[length(pos) + 1]] <- list(modifier = if (is.null(mod)) "All patients" else mod, level = lv,
      n = sum(i), n_treated = sum(t1), n_control = sum(t0),
      ps_min_treated = min(e[t1]), ps_max_treated = max(e[t1]), ps_min_control = min(e[t0]),
      ps_max_control = max(e[t0]), share_outside = mean(outside), n_outside = sum(outside),
      ess_treated = ess(t1), ess_control = ess(t0))
    for (cn in colnames(X)[-1]) {
      x <- X[, cn]
      s <- sqrt((var(x[t1]) + var(x[t0])) / 2)
      if (!(s > 0)) next
      if (!is.null(mod) && grepl(sprintf("^factor\\(%s\\)", mod), cn)) next
      bal[[length(bal) + 1]] <- list(modifier = if (is.null(mod)) "All patients" else mod,
        level = lv, term = pyterm(cn), smd_unweighted = (mean(x[t1]) - mean(x[t0])) / s,
        smd_weighted = (weighted.mean(x[t1], w_bal[t1]) - weighted.mean(x[t0], w_bal[t0])) / s)
    }
  }
  list(effects = effects, heterogeneity = het, interactions = inter, positivity = pos,
       balance = bal)
}

run_call <- function(y, mods, binary, trim, threshold = 0.05, max_outside = 0.1) {
  d <- D
  alpha <- NULL; n_trimmed <- 0
  if (trim) {
    e <- fitted(ps_fit(d))
    alpha <- crump_alpha(e)
    keep <- e >= alpha & e <= 1 - alpha
    n_trimmed <- sum(!keep)
    d <- d[keep, ]
  }
  res <- list(effects = list(), heterogeneity = list(), interactions = list(), positivity = list(),
              balance = list())
  for (m in c(list(NULL), as.list(mods))) {
    a <- analyse(d, y, m, binary, threshold, max_outside)
    for (nm in names(res)) res[[nm]] <- c(res[[nm]], a[[nm]])
  }
  kw <- list(outcome = y, treatment = "treat",
             confounders = c("age", "educ", "C(race)", "married", "nodegree", "re74", "re75"),
             modifiers = mods, estimators = EST)
  if (trim) kw$trim <- "crump"
  if (threshold != 0.05) kw$threshold <- threshold
  if (max_outside != 0.1) kw$max_outside <- max_outside
  c(list(kwargs = kw, trim_alpha = alpha, n_trimmed = n_trimmed), res)
}

out <- list(
  generated_by = sprintf("tests/reference/unseen2_lalonde.R; %s; MatchIt %s; survey %s; numDeriv %s",
                         R.version.string, packageVersion("MatchIt"), packageVersion("survey"),
                         packageVersion("numDeriv")),
  calls = list(trimmed = run_call("re78", c("married", "nodegree", "race"), FALSE, TRUE),
               untrimmed = run_call("employed78", c("married", "race"), TRUE, FALSE,
                                    threshold = 0.01, max_outside = 0.5)))
out$checks <- CHECKS
write_reference(out, "tests/reference/unseen2_lalonde.json")
