using System.Globalization;
using System.Net;
using System.Text;
using OnnxQuant.Statistics;

namespace OnnxQuant.Calibrate.Report;

/// <summary>Which tensors the report draws.</summary>
public sealed record ReportOptions
{
    /// <summary>Name fragments; a tensor is drawn when its name contains one. Empty: the most outlier-ridden tensors.</summary>
    public IReadOnlyList<string> Tensors { get; init; } = [];

    /// <summary>Most panels drawn.</summary>
    public int MaxPanels { get; init; } = 8;
}

/// <summary>
/// Draws per-channel max |x| of chosen activations, one panel each (bars: max |x|, line: mean |x|, the top channels
/// labelled) — the SmoothQuant-paper picture where outlier channels stand out. Works from a statistics file alone, so
/// it can be drawn again after smoothing. Writes a self-contained SVG, or an HTML page with the SVG and a summary table.
/// </summary>
public static class ChannelReport
{
    private const int Width = 1000, PanelHeight = 230, Top = 60, Left = 70, Right = 20, PlotHeight = 150;

    public static void Write(CalibrationStats stats, string path, ReportOptions? options = null)
    {
        options ??= new ReportOptions();
        var chosen = Choose(stats, options);
        if (chosen.Count == 0)
            throw new OnnxQuantException(path, $"no recorded tensor matches {string.Join(", ", options.Tensors.Select(t => $"'{t}'"))}; the statistics hold {stats.Tensors.Count} tensors such as '{stats.Tensors.FirstOrDefault()?.Name}'", ExitCode.Usage);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        string content = ext switch
        {
            ".svg" => Svg(stats, chosen),
            ".html" or ".htm" => Html(stats, chosen),
            _ => throw new OnnxQuantException(path, "the report must be a .html or .svg file", ExitCode.Usage),
        };
        try
        {
            File.WriteAllText(path, content, new UTF8Encoding(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(path, $"cannot be written: {e.Message}", ExitCode.OutputError, e);
        }
    }

    public static List<ActivationStats> Choose(CalibrationStats stats, ReportOptions options)
    {
        if (options.Tensors.Count > 0)
            return stats.Tensors.Where(t => options.Tensors.Any(f => t.Name.Contains(f, StringComparison.Ordinal))).Take(options.MaxPanels).ToList();
        return OutlierSummary.Rank(stats).Take(options.MaxPanels).Select(o => stats.Get(o.Tensor)!).ToList();
    }

    public static string Svg(CalibrationStats stats, IReadOnlyList<ActivationStats> tensors)
    {
        int height = Top + tensors.Count * PanelHeight + 10;
        var s = new StringBuilder();
        s.Append(Inv($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" viewBox=\"0 0 {Width} {height}\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"));
        s.Append(Inv($"<rect width=\"{Width}\" height=\"{height}\" fill=\"white\"/>\n"));
        s.Append(Inv($"<text x=\"{Left}\" y=\"24\" font-size=\"17\" font-weight=\"bold\">Per-channel max |x| of linear-layer inputs</text>\n"));
        s.Append(Inv($"<text x=\"{Left}\" y=\"44\" font-size=\"12\" fill=\"#555\">{Esc(stats.Info.Samples + " samples x " + stats.Info.SequenceLength + " tokens of " + stats.Info.Data)}; bars: max |x| per channel, line: mean |x|</text>\n"));
        for (int i = 0; i < tensors.Count; i++)
            Panel(s, tensors[i], Top + i * PanelHeight);
        s.Append("</svg>\n");
        return s.ToString();
    }

    private static void Panel(StringBuilder s, ActivationStats t, int y0)
    {
        var outliers = OutlierSummary.For(t);
        int plotWidth = Width - Left - Right;
        int yTop = y0 + 30, yBottom = yTop + PlotHeight;
        float max = Math.Max(1e-12f, t.AbsMax.Max());
        double step = NiceStep(max * 1.08 / 4);
        double yMax = step * Math.Ceiling(max * 1.08 / step);
        int ticks = (int)Math.Round(yMax / step);
        double X(double channel) => Left + (channel + 0.5) * plotWidth / t.Channels;
        double Y(double v) => yBottom - v / yMax * PlotHeight;

        s.Append(Inv($"<text x=\"{Left}\" y=\"{y0 + 18}\" font-size=\"13\" font-weight=\"bold\">{Esc(t.Name)}</text>\n"));
        s.Append(Inv($"<text x=\"{Width - Right}\" y=\"{y0 + 18}\" font-size=\"12\" text-anchor=\"end\" fill=\"#444\">{t.Channels} channels, max/median {outliers.Ratio:0.0}x, range [{t.Min:0.###}, {t.Max:0.###}]</text>\n"));
        s.Append(Inv($"<rect x=\"{Left}\" y=\"{yTop}\" width=\"{plotWidth}\" height=\"{PlotHeight}\" fill=\"#fafafa\" stroke=\"#bbb\"/>\n"));
        for (int k = 0; k <= ticks; k++)
        {
            double v = step * k, y = Y(v);
            s.Append(Inv($"<line x1=\"{Left}\" y1=\"{y:0.#}\" x2=\"{Left + plotWidth}\" y2=\"{y:0.#}\" stroke=\"#e3e3e3\"/>"));
            s.Append(Inv($"<text x=\"{Left - 6}\" y=\"{y + 4:0.#}\" font-size=\"11\" text-anchor=\"end\">{Tick(v)}</text>\n"));
        }
        // One path of bars keeps the file small for thousands of channels.
        double barWidth = Math.Max(0.6, (double)plotWidth / t.Channels * 0.8);
        var bars = new StringBuilder();
        for (int c = 0; c < t.Channels; c++)
        {
            double x = X(c) - barWidth / 2, y = Y(t.AbsMax[c]);
            bars.Append(Inv($"M{x:0.##} {yBottom}V{y:0.##}h{barWidth:0.##}V{yBottom}z"));
        }
        s.Append(Inv($"<path d=\"{bars}\" fill=\"#3b6fb6\"/>\n"));
        var line = new StringBuilder();
        for (int c = 0; c < t.Channels; c++)
            line.Append(Inv($"{(c == 0 ? "M" : "L")}{X(c):0.##} {Y(t.MeanAbs[c]):0.##}"));
        s.Append(Inv($"<path d=\"{line}\" fill=\"none\" stroke=\"#e8772e\" stroke-width=\"1\"/>\n"));
        s.Append(Inv($"<line x1=\"{Left}\" y1=\"{Y(outliers.Median):0.#}\" x2=\"{Left + plotWidth}\" y2=\"{Y(outliers.Median):0.#}\" stroke=\"#2a9d4b\" stroke-dasharray=\"4 3\"/>\n"));
        foreach (var o in outliers.Top)
        {
            double x = X(o.Channel), y = Math.Max(yTop + 11, Y(o.AbsMax) - 4);
            string anchor = x > Left + plotWidth - 80 ? "end" : x < Left + 80 ? "start" : "middle";
            s.Append(Inv($"<text x=\"{x:0.#}\" y=\"{y:0.#}\" font-size=\"11\" text-anchor=\"{anchor}\" fill=\"#b22\">ch {o.Channel}: {o.AbsMax:0.##} ({o.Ratio:0.#}x)</text>\n"));
        }
        for (int k = 0; k <= 4; k++)
        {
            int channel = (int)Math.Round((t.Channels - 1) * k / 4.0);
            s.Append(Inv($"<text x=\"{X(channel):0.#}\" y=\"{yBottom + 14}\" font-size=\"11\" text-anchor=\"middle\">{channel}</text>\n"));
        }
        s.Append(Inv($"<text x=\"{Left + plotWidth / 2}\" y=\"{yBottom + 28}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">channel (dashed: median max |x| = {outliers.Median:0.###})</text>\n"));
    }

    public static string Html(CalibrationStats stats, IReadOnlyList<ActivationStats> tensors)
    {
        var s = new StringBuilder();
        s.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>OnnxQuant calibration report</title>\n");
        s.Append("<style>body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>\n");
        s.Append("<h1>Calibration report</h1>\n");
        s.Append(Inv($"<p>{stats.Info.Samples} samples x {stats.Info.SequenceLength} tokens of {Esc(stats.Info.Data)}, tokenizer {Esc(stats.Info.Tokenizer)}, seed {stats.Info.Seed}; model fingerprint {stats.ModelFingerprint[..12]}; {stats.Tensors.Count} tensors recorded.</p>\n"));
        s.Append("<h2>Outlier channels (max |x| over the median channel)</h2>\n<table><tr><th>tensor</th><th>channels</th><th>median max|x|</th><th>top channels (max|x|, ratio)</th></tr>\n");
        foreach (var o in OutlierSummary.Rank(stats))
            s.Append(Inv($"<tr><td>{Esc(o.Tensor)}</td><td>{o.Channels}</td><td>{o.Median:0.###}</td><td>{string.Join(", ", o.Top.Select(c => Inv($"{c.Channel} ({c.AbsMax:0.##}, {c.Ratio:0.#}x)")))}</td></tr>\n"));
        s.Append("</table>\n<h2>Per-channel max |x|</h2>\n");
        s.Append(Svg(stats, tensors));
        s.Append("</body></html>\n");
        return s.ToString();
    }

    // The smallest of 1, 2, 2.5, 5 x 10^k that is at least v: axis labels stay short.
    private static double NiceStep(double v)
    {
        double p = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (var m in new[] { 1, 2, 2.5, 5, 10 })
            if (m * p >= v) return m * p;
        return 10 * p;
    }

    private static string Tick(double v) => v.ToString(v >= 100 ? "0" : v >= 1 ? "0.##" : "0.###", CultureInfo.InvariantCulture);

    private static string Esc(string text) => WebUtility.HtmlEncode(text);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
