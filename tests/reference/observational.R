# Issue 17: reference numbers for hte_report.estimation.observational (g-computation, IPW, AIPW
# with stacked M-estimation sandwich SEs), written independently of the Python code.
#
# Data: tests/reference/data/nhefs.csv (NHEFS, 1566 participants; Hernán & Robins, What If,
# ch. 12): treatment qsmk (quit smoking 1971-82), outcomes wt82_71 (weight gain, kg;
# continuous: MD) and death (binary: RD, RR, OR), modifiers sex and race (both also confounders).
#
#   * propensity score: glm(qsmk ~ confounders, binomial) (the modifier is already a confounder);
#   * outcome model: glm(y ~ qsmk * factor(m) + confounders without m), gaussian or binomial
#     (overall: y ~ qsmk + confounders);
#   * IPW point estimates from survey::svyglm(y ~ 0 + factor(arm:level)) with weights
#     P(A = a) / P(A = a | X) (Hájek means per arm and level);
#   * overlap-weight (ATO) means likewise with weights 1 - e (treated) and e (control);
#   * g-computation and AIPW means computed directly from predict();
#   * sandwich: the estimating functions psi(theta) of theta = (gamma, beta, means) written out
#     here, the bread by numerical differentiation (numDeriv::jacobian, Richardson) of
#     sum_i psi_i(theta), the meat sum_i psi_i psi_i' (clustered: sum over clusters of the
#     cluster sums' outer products), V = J^-1 B J^-T; effects by the delta method, and the
#     interaction (second level vs first: difference of RDs/MDs, ratio of RRs/ORs) by the
#     delta method with a numerical gradient over the four means;
#   * Crump et al. (2009) trimming (alpha from the overall propensity model, the rows outside
#     [alpha, 1 - alpha] dropped, every model refitted) for the continuous outcome.
#
# Run from the repository root: Rscript tests/reference/observational.R
#   -> tests/reference/observational.json
suppressPackageStartupMessages({library(survey); library(numDeriv); library(jsonlite)})

d_all <- read.csv("tests/reference/data/nhefs.csv")
d_all$cl <- d_all$seqn %% 40     # an arbitrary grouping, to check the cluster-robust meat
conf <- c("sex", "race", "age", "I(age^2)", "factor(education)", "smokeintensity",
          "I(smokeintensity^2)", "smokeyrs", "I(smokeyrs^2)", "factor(exercise)",
          "factor(active)", "wt71", "I(wt71^2)")
expit <- function(x) 1 / (1 + exp(-x))
EST <- c("gcomp", "ipw", "aipw", "overlap")

run <- function(y, mod, binary, cluster = FALSE, d = d_all, trim = NULL) {
  ps_f <- as.formula(paste("qsmk ~", paste(conf, collapse = " + ")))
  if (is.null(mod)) {
    out_rhs <- paste(c("qsmk", conf), collapse = " + ")
    g <- rep("All patients", nrow(d))
  } else {
    out_rhs <- paste(c(paste0("qsmk * factor(", mod, ")"), setdiff(conf, mod)), collapse = " + ")
    g <- as.character(d[[mod]])
  }
  out_f <- as.formula(paste(y, "~", out_rhs))
  fam <- if (binary) binomial() else gaussian()
  ps <- glm(ps_f, data = d, family = binomial(), control = glm.control(epsilon = 1e-14, maxit = 100))
  om <- glm(out_f, data = d, family = fam, control = glm.control(epsilon = 1e-14, maxit = 100))
  X <- model.matrix(ps); Z <- model.matrix(om)
  d1 <- d; d1$qsmk <- 1; d0 <- d; d0$qsmk <- 0
  Z1 <- model.matrix(terms(om), d1); Z0 <- model.matrix(terms(om), d0)
  A <- d$qsmk; Y <- d[[y]]
  levs <- sort(unique(g))
  h <- if (binary) expit else identity
  # survey: IPW Hajek means per arm x level with stabilized weights
  e <- fitted(ps)
  w <- ifelse(A == 1, mean(A) / e, (1 - mean(A)) / (1 - e))
  d$cell <- factor(paste(A, g, sep = ":"))
  des <- svydesign(ids = ~1, weights = w, data = cbind(d, w = w))
  sv <- svyglm(as.formula(paste(y, "~ 0 + cell")), design = des)
  ipw_mu <- coef(sv)
  # overlap weights (Li, Morgan & Zaslavsky 2018): 1 - e for the treated, e for the controls
  des_o <- svydesign(ids = ~1, weights = ~wo, data = cbind(d, wo = ifelse(A == 1, 1 - e, e)))
  ow_mu <- coef(svyglm(as.formula(paste(y, "~ 0 + cell")), design = des_o))
  m1 <- predict(om, newdata = d1, type = "response"); m0 <- predict(om, newdata = d0, type = "response")
  mu <- c()
  for (k in EST) for (lv in levs) for (arm in c(1, 0)) {
    i <- g == lv
    val <- switch(k,
      gcomp = mean(if (arm == 1) m1[i] else m0[i]),
      ipw = unname(ipw_mu[paste0("cell", arm, ":", lv)]),
      overlap = unname(ow_mu[paste0("cell", arm, ":", lv)]),
      aipw = if (arm == 1) mean(m1[i] + A[i] / e[i] * (Y[i] - m1[i]))
             else mean(m0[i] + (1 - A[i]) / (1 - e[i]) * (Y[i] - m0[i])))
    mu <- c(mu, setNames(val, paste(k, lv, arm, sep = "|")))
  }
  p <- ncol(X); q <- ncol(Z)
  theta <- c(coef(ps), coef(om), mu)
  psi <- function(th) {
    gam <- th[1:p]; bet <- th[p + 1:q]; mus <- th[-(1:(p + q))]
    ee <- expit(drop(X %*% gam)); mm <- h(drop(Z %*% bet))
    mm1 <- h(drop(Z1 %*% bet)); mm0 <- h(drop(Z0 %*% bet))
    cols <- list(X * (A - ee), Z * (Y - mm))
    j <- 0
    for (k in EST) for (lv in levs) for (arm in c(1, 0)) {
      j <- j + 1; i <- as.numeric(g == lv); m <- mus[j]
      col <- switch(k,
        gcomp = i * ((if (arm == 1) mm1 else mm0) - m),
        ipw = if (arm == 1) i * A / ee * (Y - m) else i * (1 - A) / (1 - ee) * (Y - m),
        overlap = if (arm == 1) i * A * (1 - ee) * (Y - m) else i * (1 - A) * ee * (Y - m),
        aipw = if (arm == 1) i * (mm1 + A / ee * (Y - mm1) - m)
               else i * (mm0 + (1 - A) / (1 - ee) * (Y - mm0) - m))
      cols[[length(cols) + 1]] <- col
    }
    do.call(cbind, cols)
  }
  P0 <- psi(theta)
  stopifnot(max(abs(colSums(P0))) < 1e-6)
  J <- jacobian(function(th) colSums(psi(th)), theta)
  if (cluster) { S <- rowsum(P0, d$cl); B <- crossprod(S) } else B <- crossprod(P0)
  Ji <- solve(J); V <- Ji %*% B %*% t(Ji)
  off <- p + q
  scales <- if (binary) c("RD", "RR", "OR") else "MD"
  rows <- list()
  j <- 0
  for (k in EST) {
    for (lv in levs) {
      i1 <- off + which(names(mu) == paste(k, lv, 1, sep = "|"))
      i0 <- off + which(names(mu) == paste(k, lv, 0, sep = "|"))
      a1 <- theta[i1]; a0 <- theta[i0]; Vs <- V[c(i1, i0), c(i1, i0)]
      for (s in scales) {
        if (s %in% c("RD", "MD")) { val <- a1 - a0; gr <- c(1, -1) }
        if (s == "RR") { val <- log(a1 / a0); gr <- c(1 / a1, -1 / a0) }
        if (s == "OR") { val <- qlogis(a1) - qlogis(a0); gr <- c(1 / (a1 * (1 - a1)), -1 / (a0 * (1 - a0))) }
        se <- sqrt(drop(t(gr) %*% Vs %*% gr))
        rows[[length(rows) + 1]] <- list(estimator = k, level = lv, scale = s,
          estimate = if (s %in% c("RR", "OR")) exp(val) else val, std_error = se,
          mu1 = a1, mu0 = a0)
      }
    }
  }
  # interaction: second level vs the first (difference of RD/MD, log ratio of RR/OR), with the
  # joint covariance of the four means
  inter <- list()
  if (length(levs) == 2) for (k in EST) for (s in scales) {
    ix <- sapply(c(paste(k, levs[1], 1, sep = "|"), paste(k, levs[1], 0, sep = "|"),
                   paste(k, levs[2], 1, sep = "|"), paste(k, levs[2], 0, sep = "|")),
                 function(nm) off + which(names(mu) == nm))
    f <- function(m) {
      eff <- function(a1, a0) switch(s, MD = a1 - a0, RD = a1 - a0, RR = log(a1 / a0),
                                     OR = qlogis(a1) - qlogis(a0))
      eff(m[3], m[4]) - eff(m[1], m[2])
    }
    th <- theta[ix]
    gr <- numDeriv::grad(f, th)
    se <- sqrt(drop(t(gr) %*% V[ix, ix] %*% gr))
    inter[[length(inter) + 1]] <- list(estimator = k, level = levs[2], reference = levs[1],
      scale = s, estimate = if (s %in% c("RR", "OR")) exp(f(th)) else f(th), std_error = se)
  }
  list(outcome = y, modifier = if (is.null(mod)) "All patients" else mod, cluster = cluster,
       trim = trim, n = nrow(d), rows = rows, interactions = inter)
}

# Crump, Hotz, Imbens & Mitnik (2009): alpha from the overall propensity model,
# 1/(alpha (1 - alpha)) = gamma where gamma = 2 E[h | h <= gamma], h = 1/(e (1 - e)); the rows
# with alpha <= e <= 1 - alpha are kept and every model is refitted on them.
crump <- function(d) {
  e <- fitted(glm(as.formula(paste("qsmk ~", paste(conf, collapse = " + "))), data = d,
                  family = binomial(), control = glm.control(epsilon = 1e-14, maxit = 100)))
  h <- sort(1 / (e * (1 - e)))
  if (max(h) <= 2 * mean(h)) return(list(alpha = 0, keep = rep(TRUE, nrow(d))))
  gam <- NA
  for (k in seq_along(h)) {
    g <- 2 * mean(h[1:k])
    nxt <- if (k < length(h)) h[k + 1] else Inf
    if (h[k] <= g && g < nxt) { gam <- g; break }
  }
  alpha <- 0.5 - sqrt(0.25 - 1 / gam)
  list(alpha = alpha, keep = e >= alpha & e <= 1 - alpha)
}
cr <- crump(d_all)
d_trim <- d_all[cr$keep, ]

out <- list(
  run("wt82_71", NULL, FALSE), run("wt82_71", "sex", FALSE), run("wt82_71", "race", FALSE),
  run("death", NULL, TRUE), run("death", "sex", TRUE), run("death", "race", TRUE),
  run("wt82_71", "sex", FALSE, cluster = TRUE), run("death", "race", TRUE, cluster = TRUE),
  run("wt82_71", NULL, FALSE, d = d_trim, trim = cr$alpha),
  run("wt82_71", "sex", FALSE, d = d_trim, trim = cr$alpha))
write_json(list(R = R.version.string, survey = as.character(packageVersion("survey")),
                numDeriv = as.character(packageVersion("numDeriv")), cases = out),
           "tests/reference/observational.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/observational.json\n")
