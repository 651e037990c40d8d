/*
 * The reports of `recstream eval`: a JSON summary (metrics per method and K, latency) and a
 * self-contained SVG line chart of HR@K over event time.
 */
#include "cli/eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_method(struct core_buf *b, const struct eval_method *mt)
{
    core_json_cstr(b, mt->name);
    core_buf_putc(b, ':');
    core_buf_putc(b, '{');
    int nk = eval__metrics_nk(mt->metrics);
    for (int i = 0; i < nk; i++) {
        struct eval_result r;
        eval_metrics_result(mt->metrics, i, &r);
        core_buf_printf(b, "%s\"hr@%d\":", i ? "," : "", r.k);
        core_json_f64(b, r.hr);
        core_buf_printf(b, ",\"ndcg@%d\":", r.k);
        core_json_f64(b, r.ndcg);
        core_buf_printf(b, ",\"mrr@%d\":", r.k);
        core_json_f64(b, r.mrr);
        core_buf_printf(b, ",\"coverage@%d\":", r.k);
        core_json_f64(b, r.coverage);
    }
    core_buf_puts(b, ",\"evaluated\":");
    core_json_i64(b, eval_metrics_count(mt->metrics));
    if (mt->latency) {
        core_buf_puts(b, ",\"latencyUs\":{\"p50\":");
        core_json_f64(b, eval_latency_percentile(mt->latency, 50));
        core_buf_puts(b, ",\"p99\":");
        core_json_f64(b, eval_latency_percentile(mt->latency, 99));
        core_buf_putc(b, '}');
    }
    core_buf_putc(b, '}');
}

int eval_report_json(const char *path, const char *protocol, const char *dataset, size_t events,
                     const struct eval_method *methods, int nmethods)
{
    struct core_buf b;
    core_buf_init(&b);
    core_buf_puts(&b, "{\"protocol\":");
    core_json_cstr(&b, protocol);
    core_buf_puts(&b, ",\"dataset\":");
    core_json_cstr(&b, dataset);
    core_buf_puts(&b, ",\"events\":");
    core_json_i64(&b, (int64_t)events);
    core_buf_puts(&b, ",\"evaluated\":");
    core_json_i64(&b, nmethods > 0 ? eval_metrics_count(methods[0].metrics) : 0);
    core_buf_puts(&b, ",\"methods\":{");
    for (int i = 0; i < nmethods; i++) {
        if (i > 0)
            core_buf_putc(&b, ',');
        json_method(&b, &methods[i]);
    }
    core_buf_puts(&b, "}}\n");
    int rc = core_write_file_atomic(path, b.data, b.len, 0644);
    core_buf_dispose(&b);
    return rc;
}

/* ---- SVG ----------------------------------------------------------------------------------- */

#define SVG_W 800
#define SVG_H 450
#define PLOT_L 70.0
#define PLOT_R 750.0 /* room for the last date label */
#define PLOT_T 50.0
#define PLOT_B 385.0
#define X_TICKS 5 /* intervals */
#define DAY_MS 86400000LL
/* The legend box: 10 px below the plot top, 20 px per method plus 8. */
#define LEGEND_H(n) (18.0 + 20.0 * (n))

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};

/* XML character data / attribute text: markup characters escaped, control characters
 * dropped (XML 1.0 forbids them) and invalid UTF-8 replaced by U+FFFD, so the document
 * stays well-formed whatever the names contain. */
static void xml_text(struct core_buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t l = c >= 0x80 ? core_utf8_len(u + i, n - i) : 1;
        if (c == '&')
            core_buf_puts(b, "&amp;");
        else if (c == '<')
            core_buf_puts(b, "&lt;");
        else if (c == '>')
            core_buf_puts(b, "&gt;");
        else if (c == '"')
            core_buf_puts(b, "&quot;");
        else if (c == '\'')
            core_buf_puts(b, "&apos;");
        else if (c < 0x20)
            core_buf_putc(b, ' ');
        else if (l == 0)
            core_buf_puts(b, "\xef\xbf\xbd");
        else
            core_buf_append(b, s + i, l);
        i += l ? l : 1;
    }
}

/* 1, 2 or 5 times a power of ten, at least raw. */
static double nice_step(double raw)
{
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

struct chart {
    int64_t tmin, tmax;
    double ymax, ystep;
};

static void chart_extent(struct chart *c, const struct eval_method *methods, int nmethods)
{
    c->tmin = INT64_MAX;
    c->tmax = INT64_MIN;
    double hrmax = 0;
    for (int i = 0; i < nmethods; i++) {
        size_t n = eval__metrics_series_len(methods[i].metrics);
        for (size_t p = 0; p < n; p++) {
            int64_t ts;
            double hr;
            eval__metrics_series_at(methods[i].metrics, p, &ts, &hr);
            c->tmin = ts < c->tmin ? ts : c->tmin;
            c->tmax = ts > c->tmax ? ts : c->tmax;
            hrmax = hr > hrmax ? hr : hrmax;
        }
    }
    if (c->tmin > c->tmax)
        c->tmin = c->tmax = 0;
    if (c->tmax - c->tmin < 60000) {
        c->tmin -= 30000;
        c->tmax += 30000;
    }
    /* Headroom so that no line runs under the legend in the top right corner. */
    double plot_h = PLOT_B - PLOT_T;
    double want = hrmax * plot_h / (plot_h - LEGEND_H(nmethods) - 4);
    want = want > 1 ? 1 : want;
    c->ystep = want > 0 ? nice_step(want / 5) : 0.2;
    c->ymax = want > 0 ? ceil(want / c->ystep - 1e-9) * c->ystep : 1;
}

static double chart_x(const struct chart *c, int64_t ts)
{
    return PLOT_L + (double)(ts - c->tmin) / (double)(c->tmax - c->tmin) * (PLOT_R - PLOT_L);
}

static double chart_y(const struct chart *c, double hr)
{
    return PLOT_B - hr / c->ymax * (PLOT_B - PLOT_T);
}

static void svg_axes(struct core_buf *b, const struct chart *c, int k)
{
    core_buf_puts(b, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    int ny = (int)lround(c->ymax / c->ystep);
    for (int i = 1; i <= ny; i++)
        core_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L,
                        chart_y(c, i * c->ystep), PLOT_R, chart_y(c, i * c->ystep));
    core_buf_puts(b, "</g>\n");
    core_buf_printf(b,
                    "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"#333333\" "
                    "stroke-width=\"1\"/>\n",
                    PLOT_L, PLOT_T, PLOT_B, PLOT_R);
    /* Y labels: as many decimals as the step needs. */
    int dec = c->ystep >= 1 ? 0 : (int)ceil(-log10(c->ystep) - 1e-9);
    core_buf_puts(b, "<g text-anchor=\"end\">\n");
    for (int i = 0; i <= ny; i++)
        core_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%.*f</text>\n", PLOT_L - 8,
                        chart_y(c, i * c->ystep) + 4, dec, i * c->ystep);
    core_buf_puts(b, "</g>\n<g text-anchor=\"middle\">\n");
    /* X labels: dates, or day and time when the run spans less than two days. */
    const char *fmt = c->tmax - c->tmin >= 2 * DAY_MS ? "%Y-%m-%d" : "%m-%d %H:%M";
    for (int i = 0; i <= X_TICKS; i++) {
        int64_t ts = c->tmin + (int64_t)((double)(c->tmax - c->tmin) * i / X_TICKS);
        time_t secs = (time_t)(ts >= 0 ? ts / 1000 : (ts - 999) / 1000);
        struct tm tm;
        char label[32] = "?";
        if (gmtime_r(&secs, &tm))
            strftime(label, sizeof label, fmt, &tm);
        double x = chart_x(c, ts);
        core_buf_printf(
            b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", x,
            PLOT_B, x, PLOT_B + 5);
        core_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x, PLOT_B + 20, label);
    }
    core_buf_printf(b, "<text x=\"%.1f\" y=\"%d\">event time (UTC)</text>\n", (PLOT_L + PLOT_R) / 2,
                    SVG_H - 12);
    core_buf_puts(b, "</g>\n");
    core_buf_printf(b,
                    "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">"
                    "HR@%d (cumulative)</text>\n",
                    (PLOT_T + PLOT_B) / 2, k);
}

static void svg_lines(struct core_buf *b, const struct chart *c, const struct eval_method *methods,
                      int nmethods)
{
    for (int i = 0; i < nmethods; i++) {
        core_buf_printf(b,
                        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                        "stroke-linejoin=\"round\" points=\"",
                        colours[i % (int)(sizeof colours / sizeof colours[0])]);
        size_t n = eval__metrics_series_len(methods[i].metrics);
        for (size_t p = 0; p < n; p++) {
            int64_t ts;
            double hr;
            eval__metrics_series_at(methods[i].metrics, p, &ts, &hr);
            core_buf_printf(b, "%s%.1f,%.1f", p ? " " : "", chart_x(c, ts), chart_y(c, hr));
        }
        core_buf_puts(b, "\"/>\n");
    }
    /* The legend sits in the top right corner of the plot, on a white box. */
    size_t longest = 0;
    for (int i = 0; i < nmethods; i++)
        longest = strlen(methods[i].name) > longest ? strlen(methods[i].name) : longest;
    double w = 44 + 7.0 * (double)(longest > 40 ? 40 : longest);
    double x = PLOT_R - w - 10, y = PLOT_T + 10;
    core_buf_printf(b,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" "
                    "fill-opacity=\"0.85\" stroke=\"#999999\"/>\n",
                    x, y, w, LEGEND_H(nmethods) - 10);
    for (int i = 0; i < nmethods; i++) {
        double ly = y + 16 + 20 * i;
        core_buf_printf(b,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                        "stroke-width=\"3\"/>\n",
                        x + 8, ly - 4, x + 32, ly - 4,
                        colours[i % (int)(sizeof colours / sizeof colours[0])]);
        core_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 38, ly);
        xml_text(b, methods[i].name);
        core_buf_puts(b, "</text>\n");
    }
}

int eval_report_svg(const char *path, const char *title, const struct eval_method *methods,
                    int nmethods)
{
    struct chart c;
    chart_extent(&c, methods, nmethods);
    int k = 0;
    if (nmethods > 0) {
        struct eval_result r;
        eval_metrics_result(methods[0].metrics, 0, &r);
        k = r.k;
    }
    struct core_buf b;
    core_buf_init(&b);
    core_buf_printf(&b,
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                    "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
                    SVG_W, SVG_H, SVG_W, SVG_H);
    core_buf_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, SVG_H);
    core_buf_printf(&b,
                    "<text x=\"%d\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" "
                    "font-weight=\"bold\">",
                    SVG_W / 2);
    xml_text(&b, title ? title : "");
    core_buf_puts(&b, "</text>\n");
    svg_axes(&b, &c, k);
    svg_lines(&b, &c, methods, nmethods);
    core_buf_puts(&b, "</svg>\n");
    int rc = core_write_file_atomic(path, b.data, b.len, 0644);
    core_buf_dispose(&b);
    return rc;
}
