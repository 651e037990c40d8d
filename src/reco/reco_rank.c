/* The blend ranker: score = sum over sources of weight x normalised source score. */
#include "reco/reco_rank.h"

static void blend_score(const struct reco_ranker *self, const struct reco_weights *w,
                        const float *features, int n, double *out)
{
    (void)self;
    for (int i = 0; i < n; i++) {
        const float *f = features + (size_t)i * RECO_SRC__COUNT;
        double s = 0;
        for (int k = 0; k < RECO_SRC__COUNT; k++)
            s += w->w[k] * f[k];
        out[i] = s;
    }
}

static const struct reco_ranker blend = {"blend", blend_score};

const struct reco_ranker *reco_ranker_blend(void)
{
    return &blend;
}
