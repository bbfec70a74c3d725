using System.Globalization;
using OnnxQuant.Advice;
using OnnxQuant.Recipes;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Renders `advise`: per-layer outliers and errors, the ranking, the recommendation and its recipe.</summary>
public static class AdvisePrinter
{
    public static void Print(IAnsiConsole console, string modelPath, AdviceReport report, Recipe recipe)
    {
        var schemes = AdviceSchemes.All;
        var layers = new Table().Border(TableBorder.Simple)
            .Title($"{Markup.Escape(modelPath)}: expected output error per layer (||Yq - Y|| / ||Y|| on the recorded rows)")
            .AddColumns(["activation", "outliers (max/median)", "linears", .. schemes.Select(AdviceSchemes.Describe)]);
        foreach (var layer in report.Layers)
            layers.AddRow([Markup.Escape(layer.Activation), $"{layer.Severity.ToString().ToLowerInvariant()} ({F(layer.MaxOverMedian, "0.0")})",
                layer.Linears.Count.ToString(CultureInfo.InvariantCulture),
                .. schemes.Select(s => F(Rms(layer.Linears.Select(l => l.Errors[s])), "0.0000"))]);
        console.Write(layers);

        var ranking = new Table().Border(TableBorder.Simple).Title("Whole model (RMS over the linears)")
            .AddColumns("rank", "scheme", "expected error", "worst linear", "runs on target");
        foreach (var s in report.Schemes.OrderBy(s => s.Rank))
            ranking.AddRow(s.Rank.ToString(CultureInfo.InvariantCulture), AdviceSchemes.Describe(s.Scheme), F(s.Error, "0.0000"),
                Markup.Escape($"{F(s.WorstLinearError, "0.0000")} {s.WorstLinear}"), s.Available ? "yes" : "no");
        console.Write(ranking);

        var r = report.Recommendation;
        string target = report.Target is { } t ? $" for {t.ToString().ToLowerInvariant()}" : "";
        console.WriteLine($"Recommended{target}: {AdviceSchemes.Describe(r.Scheme)}, expected error {F(r.ExpectedError, "0.0000")}{(r.KeepInFloat.Count > 0 ? $", keeping {r.KeepInFloat.Count} linear(s) in float ({string.Join(", ", r.KeepInFloat)})" : "")} ({r.Why}).");
        console.WriteLine("Recipe (save it and run `onnxquant run recipe.json MODEL`):");
        console.WriteLine(RecipeWriter.Format(recipe));
    }

    private static double Rms(IEnumerable<double> values) => Math.Sqrt(values.Average(v => v * v));

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
