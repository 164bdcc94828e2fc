# Reference numbers for tests/test_reference_unseen.py: survival::pbc (Mayo Clinic primary
# biliary cirrhosis trial, Fleming & Harrington 1991; 418 patients, of whom 312 were randomized
# to D-penicillamine or placebo and 106 were not (trt NA); survival: LGPL >= 2). Time to death
# (`death` = status == 2; transplant counts as censored), treatment dpca (1 = D-penicillamine,
# 0 = placebo, NA = not randomized), modifiers stagegrp (histologic stage 1-2 / 3 / 4, factor,
# reference "1-2"), age and chol (serum cholesterol; NA for 28 randomized patients), adjustment
# log(bili). Missing values: the 106 non-randomized patients leave every analysis; the chol
# analysis and the joint model lose the 28 more without chol.
#  - default call: hr.fit("Surv(time, death) ~ dpca * (C(stagegrp) + age + chol) + log(bili)",
#    treatment="dpca") (one modifier at a time, Cox Efron, model vcov)
#  - joint call: the same with strategy="joint".
# Cox: coxph(ties = "efron"), coxph.control(eps = 1e-14, iter.max = 100, toler.chol = 1e-15).
# Subgroup HR of level l: exp(b_t + b_t:l) (reference exp(b_t)); conditional HR at the type-7
# quartiles of a continuous modifier (joint model: other modifiers at the profile, mean of
# continuous / mode of categorical over the joint rows); SE of the log HR by the delta method;
# z intervals. Wald over the dpca:m columns; LR against the model without them. Ratio of HRs:
# exp(b_t:l), per unit exp(b_t:m). Holm across modifiers per test. Joint heterogeneity test:
# every dpca: column of the joint model.
# Also written (not compared with R, see the test): the joint model with the four histologic
# stages, whose stage-1 placebo patients (4 randomized, 3 with cholesterol) have no deaths.
# Writes tests/reference/data/unseen_pbc.csv and tests/reference/unseen_pbc.json.
#   Rscript tests/reference/unseen_pbc.R
source("tests/reference/unseen_common.R")
suppressPackageStartupMessages(library(survival))

p <- survival::pbc
p$dpca <- ifelse(is.na(p$trt), NA, as.integer(p$trt == 1))
p$death <- as.integer(p$status == 2)
p$stagegrp <- ifelse(is.na(p$stage), NA, ifelse(p$stage <= 2, "1-2", as.character(p$stage)))
csv <- "tests/reference/data/unseen_pbc.csv"
write.csv(p[, c("id", "time", "status", "death", "trt", "dpca", "age", "sex", "stage",
                "stagegrp", "chol", "bili")], csv, row.names = FALSE)
d <- read.csv(csv, colClasses = c(stagegrp = "character"))
stopifnot(nrow(d) == 418, sum(is.na(d$dpca)) == 106, all(abs(d$age - p$age) < 1e-12))

CC <- coxph.control(eps = 1e-14, iter.max = 100, toler.chol = 1e-15)
LEVEL <- 0.95; Q <- qnorm(0.975)
mods <- c(stagegrp = "factor", age = "numeric", chol = "numeric")
term <- function(m) if (mods[[m]] == "factor") sprintf("factor(%s)", m) else m
rec <- function(l, se) list(estimate = exp(l), std_error = se, conf_low = exp(l - Q * se),
                            conf_high = exp(l + Q * se), statistic = l / se,
                            p_value = 2 * pnorm(-abs(l / se)))
lin <- function(f, g) { b <- coef(f); list(l = sum(g * b), se = sqrt(drop(t(g) %*% vcov(f) %*% g))) }
counts <- function(dd) list(n = nrow(dd), n_treated = sum(dd$dpca == 1), n_control = sum(dd$dpca == 0),
                            events_treated = sum(dd$death[dd$dpca == 1]),
                            events_control = sum(dd$death[dd$dpca == 0]))
waldlr <- function(f, red, cols) {
  b <- coef(f)[cols]; W <- drop(t(b) %*% solve(vcov(f)[cols, cols], b))
  LR <- 2 * (f$loglik[2] - red$loglik[2])
  list(list(test = "wald", statistic = W, df = length(cols),
            p_value = pchisq(W, length(cols), lower.tail = FALSE), distribution = "chi-square"),
       list(test = "lr", statistic = LR, df = length(cols),
            p_value = pchisq(LR, length(cols), lower.tail = FALSE), distribution = "chi-square"))
}
cc <- function(vars) d[complete.cases(d[, c("time", "death", "dpca", "bili", vars)]), ]

run <- function(strategy) {
  R <- list(subgroups = list(), overall = list(), tests = list(), interaction_effects = list(),
            heterogeneity = list(), analyses = list())
  add <- function(k, x) R[[k]] <<- c(R[[k]], x)
  dd <- cc(character())
  f0 <- coxph(Surv(time, death) ~ dpca + log(bili), dd, ties = "efron", control = CC)
  add("overall", list(c(list(analysis = "overall-adjusted", scale = "HR", model = "cox-efron",
                             method = "main-effects"),
                        rec(coef(f0)[["dpca"]], sqrt(vcov(f0)["dpca", "dpca"])), counts(dd),
                        list(exposure_treated = sum(dd$time[dd$dpca == 1]),
                             exposure_control = sum(dd$time[dd$dpca == 0])))))
  add("analyses", list(list(analysis = "overall-adjusted", modifier = "", n_analysed = nrow(dd),
                            n_excluded = nrow(d) - nrow(dd))))
  records <- function(analysis, f, red, m, dd, prof) {
    base <- list(analysis = analysis, modifier = m, scale = "HR", model = "cox-efron")
    nm <- names(coef(f))
    cols <- grep(sprintf("^dpca:%s", gsub("([()])", "\\\\\\1", term(m))), nm, value = TRUE)
    # the other interactions at the profile
    gp <- setNames(as.numeric(nm == "dpca"), nm)
    for (o in setdiff(names(prof), m)) {
      if (mods[[o]] == "factor") {
        cn <- sprintf("dpca:factor(%s)%s", o, prof[[o]])
        if (cn %in% nm) gp[cn] <- 1
      } else gp[sprintf("dpca:%s", o)] <- prof[[o]]
    }
    if (mods[[m]] == "factor") {
      levs <- sort(unique(dd[[m]]))
      for (j in seq_along(levs)) {
        g <- gp; if (j > 1) g[cols[j - 1]] <- 1
        e <- lin(f, g)
        add("subgroups", list(c(base, list(level = levs[j], method = "conditional"),
                                rec(e$l, e$se), counts(dd[dd[[m]] == levs[j], ]))))
        if (j > 1) {
          e <- lin(f, as.numeric(nm == cols[j - 1]))
          add("interaction_effects", list(c(base[c("analysis", "modifier", "model")],
                                            list(level = levs[j], reference = levs[1], scale = "ratio of HRs",
                                                 method = "conditional"), rec(e$l, e$se))))
        }
      }
    } else {
      for (v in unique(unname(quantile(dd[[m]], c(.25, .5, .75), type = 7)))) {
        g <- gp; g[cols] <- v
        e <- lin(f, g)
        add("subgroups", list(c(base, list(value = v, method = "conditional"), rec(e$l, e$se))))
      }
      e <- lin(f, as.numeric(nm == cols))
      add("interaction_effects", list(c(base[c("analysis", "modifier", "model")],
                                        list(level = "per unit", reference = "", scale = "ratio of HRs",
                                             method = "coefficient"), rec(e$l, e$se))))
    }
    # the LR reduced model drops the modifier's dpca: columns only
    tl <- waldlr(f, red, cols)
    add("tests", lapply(tl, function(t) c(base[c("analysis", "modifier", "scale", "model")], t)))
  }
  if (strategy == "one-at-a-time") {
    for (m in names(mods)) {
      dd <- cc(m)
      f <- coxph(as.formula(sprintf("Surv(time, death) ~ dpca * %s + log(bili)", term(m))), dd,
                 ties = "efron", control = CC)
      red <- coxph(as.formula(sprintf("Surv(time, death) ~ dpca + %s + log(bili)", term(m))), dd,
                   ties = "efron", control = CC)
      add("analyses", list(list(analysis = "one-at-a-time", modifier = m, n_analysed = nrow(dd),
                                n_excluded = nrow(d) - nrow(dd))))
      records("one-at-a-time", f, red, m, dd, list())
    }
  }
  dd <- cc(names(mods))
  fj <- coxph(Surv(time, death) ~ dpca * (factor(stagegrp) + age + chol) + log(bili), dd,
              ties = "efron", control = CC)
  cols <- grep("^dpca:", names(coef(fj)), value = TRUE)
  rj <- coxph(Surv(time, death) ~ dpca + factor(stagegrp) + age + chol + log(bili), dd,
              ties = "efron", control = CC)
  add("heterogeneity", lapply(waldlr(fj, rj, cols), function(t)
    c(list(scale = "HR", model = "cox-efron", n = nrow(dd)), t)))
  if (strategy == "joint") {
    add("analyses", list(list(analysis = "joint", modifier = "", n_analysed = nrow(dd),
                              n_excluded = nrow(d) - nrow(dd))))
    tb <- table(dd$stagegrp)
    prof <- list(stagegrp = names(tb)[which.max(tb)], age = mean(dd$age), chol = mean(dd$chol))
    for (m in names(mods)) {
      keep <- setdiff(cols, grep(sprintf("^dpca:%s", gsub("([()])", "\\\\\\1", term(m))), cols, value = TRUE))
      red <- coxph(as.formula(paste("Surv(time, death) ~ dpca + factor(stagegrp) + age + chol + log(bili) +",
                                    paste(sub("^dpca:factor\\((\\w+)\\).*", "dpca:factor(\\1)", keep),
                                          collapse = " + "))), dd, ties = "efron", control = CC)
      stopifnot(length(coef(red)) == length(coef(fj)) - (length(cols) - length(keep)))
      records("joint", fj, red, m, dd, prof)
    }
    R$profile <- lapply(names(prof), function(v) list(analysis = "joint", variable = v, value = prof[[v]]))
  }
  # Holm across modifiers within (analysis, test)
  key <- sapply(R$tests, function(t) paste(t$analysis, t$test))
  for (k in unique(key)) {
    idx <- which(key == k)
    adj <- p.adjust(sapply(R$tests[idx], `[[`, "p_value"), "holm")
    for (j in seq_along(idx)) R$tests[[idx[j]]]$p_adjusted <- adj[j]
  }
  R
}

R <- run("one-at-a-time")
RJ <- run("joint")

# the four-stage joint model: stage 1 has 4 placebo patients and no placebo deaths, so the
# stage main effects and dpca:stage interactions diverge (coxph warns "coefficient may be
# infinite"); its Wald statistic depends on where the iterations stop.
four <- local({
  dd <- d[complete.cases(d[, c("time", "death", "dpca", "bili", "stage", "age", "chol")]), ]
  f <- suppressWarnings(coxph(Surv(time, death) ~ dpca * (factor(stage) + age + chol) + log(bili),
                              dd, ties = "efron"))
  r <- coxph(Surv(time, death) ~ dpca + factor(stage) + age + chol + log(bili), dd, ties = "efron")
  cols <- grep("^dpca:", names(coef(f)), value = TRUE)
  b <- coef(f)[cols]
  list(n = nrow(dd), control_deaths_stage1 = sum(dd$death[dd$stage == 1 & dd$dpca == 0]),
       control_stage1 = sum(dd$stage == 1 & dd$dpca == 0),
       max_abs_coef = max(abs(coef(f))),
       wald_at_default_stop = drop(t(b) %*% solve(vcov(f)[cols, cols], b)),
       lr = 2 * (f$loglik[2] - r$loglik[2]))
})

write_reference(list(case = "pbc",
                     formula = "Surv(time, death) ~ dpca * (C(stagegrp) + age + chol) + log(bili)",
                     calls = list(default = list(treatment = "dpca"),
                                  joint = list(treatment = "dpca", strategy = "joint")),
                     runs = list(default = R, joint = RJ), four_stage_joint = four),
                "tests/reference/unseen_pbc.json")
