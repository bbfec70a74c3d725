using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.Analysis.Diff;
using OnnxQuant.Calibrate.Diff;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Renders `diff --numeric`: each linear's output error against the original's, worst first, and the option that keeps the worst in float.</summary>
public static class NumericDiffPrinter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Print(IAnsiConsole console, NumericDiffReport report, LinearDiff linears, string? exclude)
    {
        var rows = linears.Linears.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var table = new Table().Border(TableBorder.Simple)
            .Title($"relative error per linear, worst first by the error it adds ({report.Samples} samples of {Markup.Escape(report.Data)}, {report.Device})");
        table.AddColumns("rank", "linear", "role", "after", "input", "output", "added", "max |error|");
        for (int i = 0; i < report.Linears.Count; i++)
        {
            var e = report.Linears[i];
            var row = rows.GetValueOrDefault(e.Linear);
            table.AddRow((i + 1).ToString(Inv), Markup.Escape(e.Linear), row is null ? "-" : LinearRoles.Short(row.Role),
                row is null ? "" : Markup.Escape(LinearDiffText.Scheme(row)), e.InputError is { } x ? Error(x) : "-", Error(e.RelativeError) + (e.ScaleFitted ? " *" : ""), Error(e.AddedError),
                e.MaxAbsError is { } m ? Format.Number(m) : "-");
        }
        console.Write(table);
        console.WriteLine($"model output {report.Output.Tensor}: relative error {Error(report.Output.RelativeError)}, max |error| {Format.Number(report.Output.MaxAbsError ?? 0)}");
        if (report.Linears.Any(e => e.ScaleFitted))
            console.WriteLine("* output divided per channel by the next group's smoothing scale (folded into its columns): compared after one least-squares factor per channel");
        if (report.NotCompared.Count > 0)
            console.WriteLine($"not compared (output tensor missing in one model): {Format.Names(report.NotCompared, 4)}");
        if (exclude is not null)
            console.WriteLine($"to keep the worst in float: {exclude}");
    }

    /// <summary>The option that keeps the <paramref name="worst"/> linears (by added error) in float; null when none adds error.</summary>
    public static string? ExcludeOption(NumericDiffReport report, int worst)
    {
        var names = report.Linears.Where(e => e.AddedError > 0).Take(worst).Select(e => $"--exclude '{e.Linear}'").ToList();
        return names.Count == 0 ? null : string.Join(" ", names);
    }

    private static string Error(double relative) => relative.ToString("0.00000", Inv);
}
