using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Evaluation;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>The human-readable form of an <see cref="EvalReport"/>.</summary>
internal static class EvalPrinter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Print(IAnsiConsole console, EvalReport r)
    {
        console.MarkupLineInterpolated($"[bold]{r.Model}[/] ({(r.Kind == ModelTask.CausalLm ? "causal LM" : "encoder")}, output {r.Output}) on {r.Data}, {r.Tokenizer}, {r.Device}");
        if (r.Reference is not null)
            console.MarkupLineInterpolated($"reference: {r.Reference}");
        var table = new Table().Border(TableBorder.Simple).HideHeaders();
        table.AddColumn("metric");
        table.AddColumn(new TableColumn("value").RightAligned());
        if (r.Perplexity is { } p)
        {
            table.AddRow("perplexity", Format.Figure(p.Perplexity, "0.000"));
            if (p.ReferencePerplexity is { } rp)
            {
                table.AddRow("reference perplexity", Format.Figure(rp, "0.000"));
                table.AddRow("perplexity change", Percent(p.RelativeIncrease!.Value));
                table.AddRow("top-1 next-token agreement", Percent(p.Top1Agreement!.Value, signed: false));
                table.AddRow("logits relative error", F(p.RelativeError!.Value, "0.0000e+0"));
            }
            table.AddRow("scored tokens", $"{p.ScoredTokens.ToString(Inv)} of {p.StreamTokens.ToString(Inv)}");
            table.AddRow("windows", $"{p.Windows.ToString(Inv)} x {p.Context.ToString(Inv)} tokens, stride {p.Stride.ToString(Inv)}");
        }
        if (r.Embedding is { } e)
        {
            table.AddRow("sentences", e.Sentences.ToString(Inv));
            table.AddRow("embedding cosine (mean / min)", $"{F(e.MeanCosine, "0.00000")} / {F(e.MinCosine, "0.00000")}");
            table.AddRow("nearest-neighbour agreement", Percent(e.NeighbourAgreement, signed: false));
            table.AddRow("hidden-state relative error", F(e.RelativeError, "0.0000e+0"));
        }
        if (r.Latency is { } l)
        {
            table.AddRow($"prefill {l.PrefillTokens.ToString(Inv)} tokens (median of {l.Runs.ToString(Inv)})", Latency(l.PrefillMs, l.ReferencePrefillMs));
            table.AddRow("1-token forward", Latency(l.StepMs, l.ReferenceStepMs));
        }
        table.AddRow("time", F(r.ElapsedSeconds, "0.0") + " s");
        console.Write(table);
    }

    private static string Latency(double ms, double? reference) =>
        reference is { } r ? $"{F(ms, "0.00")} ms (reference {F(r, "0.00")} ms, x{F(r / ms, "0.00")})" : $"{F(ms, "0.00")} ms";

    private static string Percent(double value, bool signed = true) =>
        (signed && value >= 0 ? "+" : "") + (value * 100).ToString("0.00", Inv) + "%";

    private static string F(double value, string format) => value.ToString(format, Inv);
}
