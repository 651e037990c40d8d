/*
 * Rankers: turn a candidate's features (one normalised score in [0,1] per candidate source,
 * RECO_SRC__COUNT per candidate, row-major) into a ranking score. The blend ranker is a
 * weighted sum with the configured (or experiment variant's) weights; a learned ranker
 * (gradient-boosted trees) plugs in behind the same interface.
 */
#ifndef RECSTREAM_RECO_RANK_H
#define RECSTREAM_RECO_RANK_H

#include "reco/reco.h"

struct reco_ranker {
    const char *name;
    void (*score)(const struct reco_ranker *self, const struct reco_weights *w,
                  const float *features, int n, double *out);
    /* true: score is sum over k of w->w[k] x feature k. A caller that knows the features
     * as raw source scores times a per-source normaliser may then fold the normaliser into
     * the weights and skip the feature matrix (what reco_recommend does). */
    bool linear;
};

const struct reco_ranker *reco_ranker_blend(void);

#endif
