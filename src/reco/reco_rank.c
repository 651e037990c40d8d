/* The blend ranker: score = sum over sources of weight x normalised source score. */
#include "reco/reco_rank.h"

/* Four rows at a time: each row's sum is still added in source order, exactly as one row at a
 * time would (the same result to the bit), but four independent sums keep the floating-point
 * adder busy instead of waiting on one chain of RECO_SRC__COUNT dependent additions. */
static void blend_score(const struct reco_ranker *self, const struct reco_weights *w,
                        const float *features, int n, double *out)
{
    (void)self;
    double wk[RECO_SRC__COUNT];
    for (int k = 0; k < RECO_SRC__COUNT; k++)
        wk[k] = w->w[k];
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *f = features + (size_t)i * RECO_SRC__COUNT;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int k = 0; k < RECO_SRC__COUNT; k++) {
            s0 += wk[k] * f[k];
            s1 += wk[k] * f[RECO_SRC__COUNT + k];
            s2 += wk[k] * f[2 * RECO_SRC__COUNT + k];
            s3 += wk[k] * f[3 * RECO_SRC__COUNT + k];
        }
        out[i] = s0;
        out[i + 1] = s1;
        out[i + 2] = s2;
        out[i + 3] = s3;
    }
    for (; i < n; i++) {
        const float *f = features + (size_t)i * RECO_SRC__COUNT;
        double s = 0;
        for (int k = 0; k < RECO_SRC__COUNT; k++)
            s += wk[k] * f[k];
        out[i] = s;
    }
}

static const struct reco_ranker blend = {"blend", blend_score, true};

const struct reco_ranker *reco_ranker_blend(void)
{
    return &blend;
}
