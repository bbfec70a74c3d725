using ScottPlot;

namespace OnnxQuant.Bench.Schemes;

/// <summary>
/// One figure, one panel per model: accuracy (held-out perplexity, or MiniLM's embedding cosine to FP32) against model
/// size in MB, a point per scheme (named in the panel's legend) and a dashed line at FP32's accuracy. Drawn with ScottPlot (SkiaSharp, headless).
/// </summary>
internal static class AccuracySizePlot
{
    private static readonly Dictionary<string, string> Short = new()
    {
        ["fp32"] = "FP32", ["w8a8-naive"] = "W8A8 naive", ["w8a8-sq"] = "SQ", ["w8a8-sq-auto"] = "SQ auto", ["w8a8-sq-auto-u8"] = "SQ auto u8",
        ["w4-rtn-g128"] = "RTN W4", ["w4-awq-g128"] = "AWQ W4", ["w4-gptq-g128"] = "GPTQ W4", ["w4-awq-gptq-g128"] = "AWQ-GPTQ W4",
        ["mixed-bits5-g128"] = "5 bits", ["mixed-bits5-linear-g128"] = "5 bits, linear", ["w4-awq-g128-cpu"] = "AWQ W4, CPU", ["w4-awq-g128-emb4"] = "AWQ W4 + emb 4",
        ["w4-awq-g128-head8"] = "AWQ W4 + head 8", ["w4-awq-g128-head4"] = "AWQ W4 + head 4", ["w8a8-sq-auto-outliers6"] = "SQ auto, outliers 6",
    };

    public static void Write(string path, IReadOnlyList<BenchModel> models, IReadOnlyList<SchemeRow> rows)
    {
        var shown = models.Where(m => rows.Any(r => r.Model == m.Name && r.Error is null)).ToList();
        var multiplot = new Multiplot();
        multiplot.AddPlots(shown.Count);
        int columns = shown.Count > 1 ? 2 : 1, lines = (shown.Count + columns - 1) / columns;
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(lines, columns);
        for (int i = 0; i < shown.Count; i++)
            Panel(multiplot.GetPlot(i), shown[i], rows.Where(r => r.Model == shown[i].Name && r.Error is null).ToList());
        multiplot.SavePng(path, 760 * columns, 440 * lines);
    }

    private static void Panel(Plot plot, BenchModel model, List<SchemeRow> rows)
    {
        double Accuracy(SchemeRow r) => model.IsEncoder ? r.MeanCosine ?? 1 : r.Perplexity ?? double.NaN;
        // Twenty colours, one per scheme, and a legend beside the panel: with 16 schemes, labels stepped beside the points
        // crossed each other in the crowded 11-15 MB cluster and put one scheme's name next to another's point.
        var palette = new ScottPlot.Palettes.Category20();
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            var marker = plot.Add.Marker(r.SizeBytes / 1e6, Accuracy(r), MarkerShape.FilledCircle, 9, palette.GetColor(i));
            marker.LegendText = Short.GetValueOrDefault(r.Scheme, r.Scheme);
        }
        plot.ShowLegend(Edge.Right);
        if (rows.FirstOrDefault(r => r.Scheme == "fp32") is { } fp32)
        {
            var line = plot.Add.HorizontalLine(Accuracy(fp32));
            line.LinePattern = LinePattern.Dashed;
            line.LineColor = Colors.Gray;
        }
        plot.Title(model.Name);
        plot.XLabel("model size (MB)");
        plot.YLabel(model.IsEncoder ? "embedding cosine to FP32 (higher is better)" : "held-out perplexity (lower is better)");
        double maxSize = rows.Max(r => r.SizeBytes) / 1e6;
        var ys = rows.Select(Accuracy).Where(double.IsFinite).ToList();
        double low = ys.Min(), high = ys.Max(), pad = Math.Max((high - low) * 0.15, Math.Abs(high) * 1e-4);
        plot.Axes.SetLimits(0, maxSize * 1.25, low - pad, high + pad);
    }
}
