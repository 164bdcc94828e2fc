# Independent R reference numbers for hte_report.fit_survival (Cox models, RMST).
#
# Regenerate from the repository root:
#     Rscript tests/reference/survival.R
#
# Reads  tests/reference/data/{rossi,gbsg2}.csv
# Writes tests/reference/survival.json
#
# Needs R >= 4.2 with survival (>= 3.0, for the score-test cox.zph) and jsonlite.
# Definitions (also in the "definitions" entry of the JSON):
#  - coxph with the given ties, control eps = 1e-14; robust = coxph(robust = TRUE).
#  - Conditional HR: exp(L b), L = x(treat = 1) - x(treat = 0) from model.matrix of a profile
#    row (other covariates: mean if continuous, most frequent level if categorical, ties ->
#    smallest); continuous modifiers at their type-7 quartiles. SE of log HR = sqrt(L V L').
#  - Overall HR: the same coxph without treatment interactions.
#  - Wald: all treatment x modifier coefficients (fit$assign); LR: refit without that term.
#  - cox.zph(fit, transform = "km") per term and GLOBAL; per subgroup:
#    cox.zph(coxph(Surv ~ treat (+ strata), subset))["treat", "p"].
#  - SurvDiff(h): mean over the subgroup of S_i(h | treat = 1) - S_i(h | treat = 0), with
#    S_i(h) = exp(-H_s(h) exp(x_i b)) and H_s the Breslow baseline hazard (survfit ctype = 1).
#    Variance: G V G' + sum_s g_s g_s' varhaz_s, with G the numerical derivative in b of the
#    subgroup differences (H_s recomputed at each b), g_s = d/dH_s and varhaz_s = sum d/S0^2.
#    Checked here against survfit(fit, newdata, ctype = 1)$std.err for single rows.
#    Conditional SurvDiff(h): the same at the profile row (modal stratum) with a continuous
#    modifier at each of its quartiles.
#  - RMST: summary(survfit(Surv ~ 1), rmean = tau)$table[c("rmean", "se(rmean)")] per arm
#    within each subgroup; difference and sqrt of summed variances; equality test across
#    levels = Cochran's Q with weights 1/se^2.

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_arg <- sub("^--file=", "", args_all[grepl("^--file=", args_all)])
ref_dir <- if (length(script_arg) == 1) dirname(normalizePath(script_arg)) else "tests/reference"
data_dir <- file.path(ref_dir, "data")
out_file <- file.path(ref_dir, "survival.json")

Z <- qnorm(0.975)
CTL <- coxph.control(eps = 1e-14, iter.max = 200, toler.chol = 1e-15)

ratio_row <- function(logest, se) {
  stat <- logest / se
  list(estimate = exp(logest), std_error = se, conf_low = exp(logest - Z * se),
       conf_high = exp(logest + Z * se), statistic = stat, p_value = 2 * pnorm(-abs(stat)))
}
diff_row <- function(est, se) {
  stat <- est / se
  list(estimate = est, std_error = se, conf_low = est - Z * se, conf_high = est + Z * se,
       statistic = stat, p_value = 2 * pnorm(-abs(stat)))
}
wald <- function(b, V) {
  W <- as.numeric(t(b) %*% solve(V, b))
  list(statistic = W, df = length(b), p_value = pchisq(W, length(b), lower.tail = FALSE))
}
mode_of <- function(x) {
  tab <- table(x)
  top <- names(tab)[tab == max(tab)]
  v <- sort(unique(x))
  v[as.character(v) %in% top][1]
}

run_case <- function(cs) {
  d <- read.csv(file.path(data_dir, cs$data), stringsAsFactors = FALSE)
  d$.trt <- as.integer(d[[cs$treatment]] != cs$control)
  tvar <- cs$treatment
  d[[tvar]] <- d$.trt
  for (v in cs$categorical) d[[v]] <- factor(d[[v]])
  strata_term <- if (is.null(cs$strata)) "" else paste0(" + strata(", cs$strata, ")")
  rhs <- cs$rhs
  fml <- as.formula(paste0("Surv(", cs$time, ", ", cs$event, ") ~ ", rhs, strata_term))
  fit <- coxph(fml, data = d, ties = cs$ties, robust = cs$robust, control = CTL)
  b <- coef(fit)
  V <- vcov(fit)
  tt <- delete.response(terms(as.formula(paste("~", rhs))))
  xlev <- lapply(d[cs$categorical], levels)
  xmat <- function(nd) {
    for (v in cs$categorical) nd[[v]] <- factor(as.character(nd[[v]]), levels = xlev[[v]])
    model.matrix(tt, model.frame(tt, nd))[, -1, drop = FALSE]
  }
  stopifnot(all.equal(unname(colnames(xmat(d[1:2, ]))), names(b)))
  covars <- cs$covariates
  profile <- lapply(covars, function(v) if (v %in% cs$categorical) mode_of(d[[v]]) else mean(d[[v]]))
  names(profile) <- covars

  # ---- conditional HRs
  cond <- list()
  for (m in cs$modifiers) {
    vals <- if (m %in% cs$categorical) xlev[[m]] else
      unname(quantile(d[[m]], c(.25, .5, .75), type = 7))
    for (v in vals) {
      nd <- as.data.frame(profile, stringsAsFactors = FALSE)
      nd[[m]] <- v
      n1 <- nd; n1[[tvar]] <- 1
      n0 <- nd; n0[[tvar]] <- 0
      L <- xmat(n1) - xmat(n0)
      r <- ratio_row(sum(L * b), sqrt(as.numeric(L %*% V %*% t(L))))
      r$modifier <- m
      if (m %in% cs$categorical) r$level <- as.character(v) else r$value <- v
      cond[[length(cond) + 1]] <- r
    }
  }
  # ---- overall HR (main effects)
  main_rhs <- paste(c(tvar, covars), collapse = " + ")
  mfit <- coxph(as.formula(paste0("Surv(", cs$time, ", ", cs$event, ") ~ ",
                                  cs$main_rhs, strata_term)),
                data = d, ties = cs$ties, robust = cs$robust, control = CTL)
  overall_hr <- ratio_row(coef(mfit)[[1]], sqrt(vcov(mfit)[1, 1]))
  # ---- Wald and LR per modifier
  labels <- attr(terms(fit), "term.labels")
  tests <- list()
  for (m in cs$modifiers) {
    term <- cs$interaction_terms[[m]]
    idx <- fit$assign[[term]]
    w <- wald(b[idx], V[idx, idx, drop = FALSE])
    red <- update(fit, as.formula(paste(". ~ . -", term)))
    lr <- 2 * (fit$loglik[2] - red$loglik[2])
    tests[[length(tests) + 1]] <- list(modifier = m, test = "wald", statistic = w$statistic,
                                       df = w$df, p_value = w$p_value)
    tests[[length(tests) + 1]] <- list(modifier = m, test = "lr", statistic = lr,
                                       df = length(idx),
                                       p_value = pchisq(lr, length(idx), lower.tail = FALSE))
  }
  zph <- cox.zph(fit, transform = "km")$table
  zph_rows <- lapply(seq_len(nrow(zph)), function(i)
    list(term = rownames(zph)[i], statistic = zph[i, "chisq"], df = zph[i, "df"], p_value = zph[i, "p"]))

  # ---- subgroups: levels of categorical modifiers, quarters of continuous ones
  subs <- list(list(modifier = "(overall)", level = NULL, rows = seq_len(nrow(d))))
  for (m in cs$modifiers) {
    if (m %in% cs$categorical) {
      for (v in xlev[[m]])
        subs[[length(subs) + 1]] <- list(modifier = m, level = as.character(v), rows = which(d[[m]] == v))
    } else {
      br <- unname(quantile(d[[m]], c(0, .25, .5, .75, 1), type = 7))
      q <- as.integer(cut(d[[m]], br, include.lowest = TRUE))
      for (j in 1:4) subs[[length(subs) + 1]] <- list(modifier = m, quarter = j, rows = which(q == j))
    }
  }
  ph_fml <- as.formula(paste0("Surv(", cs$time, ", ", cs$event, ") ~ ", tvar, strata_term))
  sub_info <- lapply(subs, function(s) {
    dd <- d[s$rows, ]
    t1 <- dd[[tvar]] == 1
    environment(ph_fml) <- environment()  # cox.zph re-reads the data from here
    pf <- coxph(ph_fml, data = dd, ties = cs$ties, control = CTL)
    list(modifier = s$modifier, level = s$level, quarter = s$quarter, n = nrow(dd),
         n_treated = sum(t1), n_control = sum(!t1),
         events_treated = sum(dd[[cs$event]][t1]), events_control = sum(dd[[cs$event]][!t1]),
         exposure_treated = sum(dd[[cs$time]][t1]), exposure_control = sum(dd[[cs$time]][!t1]),
         ph_p_value = cox.zph(pf, transform = "km")$table[tvar, "p"])
  })

  # ---- standardized survival differences
  X <- xmat(d)
  d1 <- d; d1[[tvar]] <- 1
  d0 <- d; d0[[tvar]] <- 0
  X1 <- xmat(d1)
  X0 <- xmat(d0)
  sidx <- if (is.null(cs$strata)) rep(1L, nrow(d)) else as.integer(factor(d[[cs$strata]]))
  nstr <- max(sidx)
  time <- d[[cs$time]]
  ev <- d[[cs$event]]
  # Breslow hazard by definition, per stratum: H_s(h) = sum_{t_k <= h} d_k / S0(t_k)
  base <- function(beta, h) {
    r <- exp(drop(X %*% beta))
    H <- vh <- numeric(nstr)
    for (s in seq_len(nstr)) {
      ii <- sidx == s
      tk <- sort(unique(time[ii & ev == 1 & time <= h]))
      for (t in tk) {
        s0 <- sum(r[ii & time >= t])
        dk <- sum(ii & ev == 1 & time == t)
        H[s] <- H[s] + dk / s0
        vh[s] <- vh[s] + dk / s0^2
      }
    }
    list(H = H, varhaz = vh)
  }
  W <- sapply(subs, function(s) { w <- numeric(nrow(d)); w[s$rows] <- 1 / length(s$rows); w })
  diffs <- function(beta, H) {
    s1 <- exp(-H[sidx] * exp(drop(X1 %*% beta)))
    s0 <- exp(-H[sidx] * exp(drop(X0 %*% beta)))
    list(d = drop(t(W) %*% (s1 - s0)), m1 = drop(t(W) %*% s1), m0 = drop(t(W) %*% s0),
         s1 = s1, s0 = s0)
  }
  # anchor the by-definition hazard to survival's survfit (ctype = 1)
  chk <- xmat(d[1:3, ]) * 0
  nd0 <- d[1:nstr, ]
  for (v in names(profile)) nd0[[v]] <- if (v %in% cs$categorical) xlev[[v]][1] else 0
  nd0[[tvar]] <- 0
  if (!is.null(cs$strata)) nd0[[cs$strata]] <- sort(unique(d[[cs$strata]]))
  survdiff <- list()
  sd_tests <- list()
  cond_sd <- list()
  for (h in cs$horizons) {
    bh <- base(b, h)
    for (s in seq_len(nstr)) {
      sf <- survfit(fit, newdata = nd0[s, , drop = FALSE], ctype = 1)
      stopifnot(abs(summary(sf, times = h)$cumhaz - bh$H[s]) < 1e-10 * bh$H[s])
    }
    # single-row check of the variance decomposition against survfit's std.err
    one <- d[1, , drop = FALSE]
    x1 <- xmat(one); s1 <- if (is.null(cs$strata)) 1 else as.integer(factor(one[[cs$strata]], levels = sort(unique(d[[cs$strata]]))))
    sfun <- function(beta) exp(-base(beta, h)$H[s1] * exp(sum(x1 * beta)))
    eps <- 1e-6
    g1 <- sapply(seq_along(b), function(j) { e <- numeric(length(b)); e[j] <- eps
      (sfun(b + e) - sfun(b - e)) / (2 * eps) })
    sv <- sfun(b)
    gH <- -sv * exp(sum(x1 * b))
    var1 <- sum(g1 * (V %*% g1)) + gH^2 * bh$varhaz[s1]
    if (!cs$robust) {
      sf <- summary(survfit(fit, newdata = one, ctype = 1), times = h)
      stopifnot(abs(sf$surv - sv) < 1e-10, abs(sf$std.err - sqrt(var1)) < 1e-7 * sf$std.err)
    }
    est <- diffs(b, bh$H)
    G <- sapply(seq_along(b), function(j) { e <- numeric(length(b)); e[j] <- eps
      (diffs(b + e, base(b + e, h)$H)$d - diffs(b - e, base(b - e, h)$H)$d) / (2 * eps) })
    G <- matrix(G, nrow = length(subs))
    r1 <- exp(drop(X1 %*% b)); r0 <- exp(drop(X0 %*% b))
    GH <- sapply(seq_len(nstr), function(s) {
      ii <- as.numeric(sidx == s)
      drop(t(W) %*% (ii * (-est$s1 * r1 + est$s0 * r0)))
    })
    GH <- matrix(GH, nrow = length(subs))
    Sig <- G %*% V %*% t(G) + GH %*% diag(bh$varhaz, nstr) %*% t(GH)
    for (i in seq_along(subs)) {
      r <- diff_row(est$d[i], sqrt(Sig[i, i]))
      r$modifier <- subs[[i]]$modifier; r$level <- subs[[i]]$level
      r$quarter <- subs[[i]]$quarter; r$horizon <- h
      r$mu1 <- est$m1[i]; r$mu0 <- est$m0[i]
      survdiff[[length(survdiff) + 1]] <- r
    }
    # conditional survival differences: profile row, modal stratum, continuous modifier at
    # its quartiles
    smode <- as.integer(names(which.max(table(sidx))))
    for (m in setdiff(cs$modifiers, cs$categorical)) {
      vals <- unname(quantile(d[[m]], c(.25, .5, .75), type = 7))
      nd <- as.data.frame(profile, stringsAsFactors = FALSE)[rep(1, 3), , drop = FALSE]
      nd[[m]] <- vals
      n1 <- nd; n1[[tvar]] <- 1
      n0 <- nd; n0[[tvar]] <- 0
      P1 <- xmat(n1); P0 <- xmat(n0)
      cdiff <- function(beta) {
        H <- base(beta, h)$H[smode]
        exp(-H * exp(drop(P1 %*% beta))) - exp(-H * exp(drop(P0 %*% beta)))
      }
      Gc <- sapply(seq_along(b), function(j) { e <- numeric(length(b)); e[j] <- eps
        (cdiff(b + e) - cdiff(b - e)) / (2 * eps) })
      H <- bh$H[smode]
      gh <- -exp(-H * exp(drop(P1 %*% b))) * exp(drop(P1 %*% b)) +
        exp(-H * exp(drop(P0 %*% b))) * exp(drop(P0 %*% b))
      est_c <- cdiff(b)
      for (i in 1:3) {
        r <- diff_row(est_c[i], sqrt(sum(Gc[i, ] * (V %*% Gc[i, ])) + gh[i]^2 * bh$varhaz[smode]))
        r$modifier <- m; r$value <- vals[i]; r$horizon <- h
        cond_sd[[length(cond_sd) + 1]] <- r
      }
    }
    for (m in intersect(cs$modifiers, cs$categorical)) {
      ii <- which(sapply(subs, function(s) s$modifier == m))
      C <- cbind(-1, diag(length(ii) - 1))
      w <- wald(C %*% est$d[ii], C %*% Sig[ii, ii] %*% t(C))
      sd_tests[[length(sd_tests) + 1]] <- c(list(modifier = m, horizon = h), w)
    }
  }

  # ---- RMST (Kaplan-Meier per arm within subgroup)
  km_fml <- as.formula(paste0("Surv(", cs$time, ", ", cs$event, ") ~ 1"))
  rm_rows <- lapply(subs, function(s) {
    dd <- d[s$rows, ]
    arm <- lapply(c(1, 0), function(a) {
      tab <- summary(survfit(km_fml, data = dd[dd[[tvar]] == a, ]), rmean = cs$tau)$table
      c(tab[["rmean"]], tab[["se(rmean)"]])
    })
    r <- diff_row(arm[[1]][1] - arm[[2]][1], sqrt(arm[[1]][2]^2 + arm[[2]][2]^2))
    c(r, list(modifier = s$modifier, level = s$level, quarter = s$quarter, tau = cs$tau,
              mu1 = arm[[1]][1], mu0 = arm[[2]][1], se1 = arm[[1]][2], se0 = arm[[2]][2]))
  })
  rm_tests <- list()
  for (m in intersect(cs$modifiers, cs$categorical)) {
    rr <- Filter(function(r) r$modifier == m, rm_rows)
    est <- sapply(rr, `[[`, "estimate"); w <- 1 / sapply(rr, `[[`, "std_error")^2
    Q <- sum(w * (est - sum(w * est) / sum(w))^2)
    rm_tests[[length(rm_tests) + 1]] <- list(modifier = m, statistic = Q, df = length(rr) - 1,
                                             p_value = pchisq(Q, length(rr) - 1, lower.tail = FALSE))
  }

  list(case = cs$case, data = cs$data, n = nrow(d), events = sum(ev), ties = cs$ties,
       robust = cs$robust, coefficients = as.list(b), std_errors = as.list(sqrt(diag(V))),
       loglik = fit$loglik[2], profile = profile, conditional = cond, overall_hr = overall_hr,
       tests = tests, zph = zph_rows, subgroups = sub_info, survdiff = survdiff,
       survdiff_conditional = cond_sd, survdiff_equality = sd_tests, rmst = rm_rows, rmst_equality = rm_tests)
}

rossi <- list(data = "rossi.csv", time = "week", event = "arrest", treatment = "fin", control = 0,
              rhs = "fin * (age + wexp) + prio", main_rhs = "fin + age + wexp + prio",
              covariates = c("age", "wexp", "prio"), categorical = "wexp",
              modifiers = c("age", "wexp"),
              interaction_terms = list(age = "fin:age", wexp = "fin:wexp"),
              strata = NULL, horizons = c(20, 40), tau = 40)
gbsg2 <- list(data = "gbsg2.csv", time = "time", event = "cens", treatment = "horTh", control = "no",
              rhs = "horTh * (age + menostat + tsize) + pnodes",
              main_rhs = "horTh + age + menostat + tsize + pnodes",
              covariates = c("age", "menostat", "tsize", "pnodes"), categorical = "menostat",
              modifiers = c("age", "menostat", "tsize"),
              interaction_terms = list(age = "horTh:age", menostat = "horTh:menostat",
                                       tsize = "horTh:tsize"),
              strata = "tgrade", horizons = c(1095, 1825), tau = 1825)
cases <- list(
  c(list(case = "rossi_efron", ties = "efron", robust = FALSE), rossi),
  c(list(case = "rossi_breslow", ties = "breslow", robust = FALSE), rossi),
  c(list(case = "rossi_efron_robust", ties = "efron", robust = TRUE), rossi),
  c(list(case = "gbsg2_efron", ties = "efron", robust = FALSE), gbsg2),
  c(list(case = "gbsg2_breslow", ties = "breslow", robust = FALSE), gbsg2),
  c(list(case = "gbsg2_breslow_robust", ties = "breslow", robust = TRUE), gbsg2)
)
out <- list(
  generated_by = paste0("tests/reference/survival.R; ", R.version.string, "; survival ",
                        packageVersion("survival"), ", jsonlite ", packageVersion("jsonlite")),
  definitions = readLines(if (length(script_arg) == 1) script_arg else "tests/reference/survival.R")[3:29],
  cases = lapply(cases, run_case)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = 1),
           out_file)
cat("wrote", out_file, "\n")
