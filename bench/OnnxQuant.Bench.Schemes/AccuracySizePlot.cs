using ScottPlot;

namespace OnnxQuant.Bench.Schemes;

/// <summary>
/// One figure, one panel per model: accuracy (held-out perplexity, or MiniLM's embedding cosine to FP32) against model
/// size in MB, a labelled point per scheme and a dashed line at FP32's accuracy. Drawn with ScottPlot (SkiaSharp, headless).
/// </summary>
internal static class AccuracySizePlot
{
    private static readonly Dictionary<string, string> Short = new()
    {
        ["fp32"] = "FP32", ["w8a8-naive"] = "W8A8 naive", ["w8a8-sq"] = "SQ", ["w8a8-sq-auto"] = "SQ auto", ["w8a8-sq-auto-u8"] = "SQ auto u8",
        ["w4-rtn-g128"] = "RTN W4", ["w4-awq-g128"] = "AWQ W4",
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
        multiplot.SavePng(path, 560 * columns, 420 * lines);
    }

    private static void Panel(Plot plot, BenchModel model, List<SchemeRow> rows)
    {
        double Accuracy(SchemeRow r) => model.IsEncoder ? r.MeanCosine ?? 1 : r.Perplexity ?? double.NaN;
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            // Every point carries its own label (no legend box to hide points behind); schemes of one size often sit
            // together (SQ, SQ auto and its uint8 form), so labels step through three heights.
            plot.Add.Marker(r.SizeBytes / 1e6, Accuracy(r), MarkerShape.FilledCircle, 9, palette.GetColor(i));
            var label = plot.Add.Text(Short.GetValueOrDefault(r.Scheme, r.Scheme), r.SizeBytes / 1e6, Accuracy(r));
            label.LabelFontSize = 11;
            label.LabelOffsetX = 6;
            label.LabelOffsetY = (i % 3) switch { 0 => -16, 1 => 4, _ => 18 };
        }
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
