# Reference numbers for every p.adjust method (issue 16).
# Regenerate from the repository root:  Rscript tests/reference/issue16_padjust.R
# Writes tests/reference/issue16_padjust.json.
library(jsonlite)
vectors <- list(
  mixed = c(0.0021, 0.013, 0.041, 0.047, 0.18, 0.62, 0.0004, 0.09),
  ties = c(0.01, 0.01, 0.03, 0.03, 0.2, 0.5, 0.5),
  two = c(0.04, 0.03),
  one = c(0.02),
  close = c(0.011, 0.012, 0.013, 0.014, 0.015, 0.016, 0.017, 0.018, 0.019, 0.02, 0.9)
)
methods <- p.adjust.methods  # holm hochberg hommel bonferroni BH BY fdr none
out <- lapply(vectors, function(p) {
  list(p = p, adjusted = sapply(methods, function(m) p.adjust(p, method = m), simplify = FALSE))
})
writeLines(toJSON(list(generated_by = paste("tests/reference/issue16_padjust.R;", R.version.string),
                       methods = methods, cases = out),
                  digits = NA, auto_unbox = FALSE, pretty = TRUE),
           "tests/reference/issue16_padjust.json")
