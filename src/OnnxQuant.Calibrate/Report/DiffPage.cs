using System.Globalization;
using System.Net;
using System.Text;
using OnnxQuant.Analysis;
using OnnxQuant.Analysis.Diff;
using OnnxQuant.Calibrate.Diff;

namespace OnnxQuant.Calibrate.Report;

/// <summary>
/// `diff --html`: one self-contained page (inline CSS and SVG, no script, nothing fetched) with the per-linear table, a
/// bar chart of each linear's error by depth, and the per-channel input panels of the worst linears (<see cref="ChannelReport"/>).
/// </summary>
public static class DiffPage
{
    private const int ChartWidth = 1000, ChartHeight = 260, Left = 60, Bottom = 40, Top = 30;

    public static string Html(string beforeName, string afterName, LinearDiff diff, NumericDiffReport numeric, int worstPanels, string? exclude)
    {
        var errors = numeric.Linears.ToDictionary(e => e.Linear, StringComparer.Ordinal);
        var s = new StringBuilder();
        s.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>OnnxQuant diff</title>\n<style>");
        s.Append("body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px}");
        s.Append("td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td.n,th.n{text-align:left}tr.worst td{background:#fde8e4}");
        s.Append("code{background:#f3f3f3;padding:2px 4px}</style></head><body>\n");
        s.Append($"<h1>{Esc(beforeName)} &rarr; {Esc(afterName)}</h1>\n");
        s.Append(Inv($"<p>{diff.Linears.Count} linears with a constant weight; initializers {Mb(diff.Graph.InitializerBytesBefore)} &rarr; {Mb(diff.Graph.InitializerBytesAfter)}. "));
        s.Append(Inv($"Model output <code>{Esc(numeric.Output.Tensor)}</code>: relative error {numeric.Output.RelativeError:0.00000} on {numeric.Samples} samples of {Esc(numeric.Data)}.</p>\n"));
        if (exclude is not null)
            s.Append($"<p>To keep the worst in float: <code>{Esc(exclude)}</code></p>\n");
        s.Append("<h2>Error by depth</h2>\n");
        Chart(s, diff, errors);
        s.Append("<h2>Linears</h2>\n");
        Table(s, diff, errors, numeric.Linears.Take(worstPanels).Select(e => e.Linear).ToHashSet(StringComparer.Ordinal));
        if (numeric.InputStats is { } stats)
        {
            var worst = numeric.Linears.Take(worstPanels).Select(e => diff.Linears.First(r => r.Name == e.Linear).Input)
                .Distinct(StringComparer.Ordinal).Select(stats.Get).OfType<Statistics.ActivationStats>().ToList();
            if (worst.Count > 0)
            {
                s.Append("<h2>Inputs of the worst linears (original model)</h2>\n");
                s.Append(ChannelReport.Svg(stats, worst));
            }
        }
        s.Append("</body></html>\n");
        return s.ToString();
    }

    // Bars in graph order: light = the output's relative error, dark = what the linear adds over its input.
    private static void Chart(StringBuilder s, LinearDiff diff, IReadOnlyDictionary<string, TensorError> errors)
    {
        var rows = diff.Linears.Where(r => errors.ContainsKey(r.Name)).ToList();
        double max = Math.Max(1e-9, rows.Select(r => errors[r.Name].RelativeError).DefaultIfEmpty(0).Max());
        int plot = ChartWidth - Left - 20, height = ChartHeight - Top - Bottom;
        s.Append(Inv($"<svg id=\"error-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{ChartWidth}\" height=\"{ChartHeight}\" font-size=\"11\">\n"));
        s.Append(Inv($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plot}\" height=\"{height}\" fill=\"#fafafa\" stroke=\"#bbb\"/>\n"));
        for (int k = 0; k <= 4; k++)
        {
            double v = max * k / 4, y = Top + height - height * k / 4.0;
            s.Append(Inv($"<text x=\"{Left - 4}\" y=\"{y + 4:0.#}\" text-anchor=\"end\">{v:0.###}</text><line x1=\"{Left}\" x2=\"{Left + plot}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\" stroke=\"#e3e3e3\"/>\n"));
        }
        double step = (double)plot / Math.Max(1, rows.Count), bar = Math.Max(1, step * 0.7);
        for (int i = 0; i < rows.Count; i++)
        {
            var e = errors[rows[i].Name];
            double x = Left + i * step + (step - bar) / 2;
            double hOut = height * e.RelativeError / max, hAdd = height * Math.Max(0, e.AddedError) / max;
            string title = Esc($"{i + 1}. {rows[i].Name}: output {e.RelativeError:0.00000}, added {e.AddedError:0.00000}");
            s.Append(Inv($"<rect class=\"bar\" x=\"{x:0.##}\" y=\"{Top + height - hOut:0.##}\" width=\"{bar:0.##}\" height=\"{hOut:0.##}\" fill=\"#9ec3ea\"><title>{title}</title></rect>"));
            s.Append(Inv($"<rect class=\"bar-added\" x=\"{x:0.##}\" y=\"{Top + height - hAdd:0.##}\" width=\"{bar:0.##}\" height=\"{hAdd:0.##}\" fill=\"#2f5f9e\"/>\n"));
        }
        s.Append(Inv($"<text x=\"{Left + plot / 2}\" y=\"{ChartHeight - 12}\" text-anchor=\"middle\" fill=\"#555\">linear, in graph order (light: relative error of its output; dark: the error it adds over its input)</text>\n"));
        s.Append(Inv($"<text x=\"{Left}\" y=\"{Top - 10}\" fill=\"#555\">relative error</text>\n</svg>\n"));
    }

    private static void Table(StringBuilder s, LinearDiff diff, IReadOnlyDictionary<string, TensorError> errors, HashSet<string> worst)
    {
        s.Append("<table id=\"linears\"><tr><th>#</th><th class=\"n\">linear</th><th>role</th><th>before</th><th>after</th><th>bytes</th>");
        s.Append("<th>smoothing</th><th>float ch</th><th>input err</th><th>output err</th><th>added</th><th class=\"n\">kept because</th></tr>\n");
        for (int i = 0; i < diff.Linears.Count; i++)
        {
            var r = diff.Linears[i];
            var e = errors.GetValueOrDefault(r.Name);
            s.Append(worst.Contains(r.Name) ? "<tr class=\"linear-row worst\">" : "<tr class=\"linear-row\">");
            s.Append(Inv($"<td>{i + 1}</td><td class=\"n\">{Esc(r.Name)}</td><td>{LinearRoles.Short(r.Role)}</td><td>{Esc(LinearDiffText.Before(r))} {Mb(r.BytesBefore)}</td>"));
            s.Append(Inv($"<td>{Esc(LinearDiffText.Scheme(r))} {Mb(r.BytesAfter)}</td><td>{r.BytesDelta:+#,0;-#,0;0}</td><td>{Esc(LinearDiffText.Smoothing(r.Smoothing))}</td>"));
            s.Append(Inv($"<td>{(r.FloatChannels == 0 ? "" : r.FloatChannels)}</td><td>{Err(e?.InputError)}</td><td>{Err(e?.RelativeError)}</td><td>{Err(e?.AddedError)}</td>"));
            s.Append($"<td class=\"n\">{Esc(r.KeptText ?? "")}</td></tr>\n");
        }
        s.Append("</table>\n");
    }

    private static string Err(double? v) => v is { } x ? x.ToString("0.00000", CultureInfo.InvariantCulture) : "-";

    private static string Mb(long bytes) => bytes >= 1 << 20 ? (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB" : (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB";

    private static string Esc(string text) => WebUtility.HtmlEncode(text);

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
