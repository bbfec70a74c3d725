using System.CommandLine;
using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>One gate's outcome: the measured figure against the bound (<see cref="Measured"/> null when verification did not run).</summary>
public sealed record GateResult(Gate Gate, string Option, double Bound, double? Measured, bool Passed)
{
    /// <summary>"--min-top1: measured 93.75 against at least 95".</summary>
    public string Describe() => Measured is { } m
        ? $"{Option}: measured {Number(m)} against {(Gate == Gate.MaxPplIncrease ? "at most" : "at least")} {Number(Bound)} ({(Passed ? "passed" : "FAILED")})"
        : $"{Option}: not measured (verification did not run) against {Number(Bound)} (FAILED)";

    private static string Number(double x) => x.ToString("0.####", CultureInfo.InvariantCulture);
}

/// <summary>
/// The accuracy gates of `smooth`, `awq` and `eval` (--max-ppl-increase, --min-cosine, --min-top1; docs/recipes.md,
/// "Gates"): the bounds from the command line, the check that they can be measured before any work, and the verdict.
/// </summary>
internal sealed class GateArguments
{
    public Option<double?> MaxPplIncrease { get; } = new("--max-ppl-increase") { Description = "Fail (exit 6, the model is kept) when perplexity rises more than this many percent over the input's (causal LMs)." };

    public Option<double?> MinCosine { get; } = new("--min-cosine") { Description = "Fail (exit 6, the model is kept) when the mean embedding cosine with the input is below this (encoders)." };

    public Option<double?> MinTop1 { get; } = new("--min-top1") { Description = "Fail (exit 6, the model is kept) when top-1 next-token agreement with the input is below this percentage (causal LMs)." };

    public IEnumerable<Option> All => [MaxPplIncrease, MinCosine, MinTop1];

    public GateBounds Bounds(ParseResult parse)
    {
        var bounds = new GateBounds { MaxPplIncrease = parse.GetValue(MaxPplIncrease), MinCosine = parse.GetValue(MinCosine), MinTop1 = parse.GetValue(MinTop1) };
        foreach (var (gate, bound) in bounds.Given)
            if (GateBounds.RangeError(gate, bound) is { } problem)
                throw new OnnxQuantException(null, $"{GateBounds.OptionName(gate)} {problem} (got {bound.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
        return bounds;
    }

    /// <summary>
    /// Refuses, before any work, gates that could not be measured: nothing to measure (<paramref name="whyNot"/> says
    /// why), or a figure the model's task does not have. <paramref name="fromRecipe"/> names gates by recipe key.
    /// </summary>
    public static void EnsureMeasurable(GateBounds bounds, bool verifies, string whyNot, ModelTask task, string modelPath, bool fromRecipe)
    {
        foreach (var (gate, _) in bounds.Given)
        {
            string name = fromRecipe ? GateBounds.RecipeKey(gate) : GateBounds.OptionName(gate);
            if (!verifies)
                throw new OnnxQuantException(modelPath, $"cannot be gated with {name}: {whyNot}, so the figure would never be measured (a gate that cannot be measured is not a pass). Drop the gate or let the comparison run", ExitCode.Usage);
            if (!GateBounds.Measures(gate, task))
                throw new OnnxQuantException(modelPath,
                    $"is measured as {(task == ModelTask.CausalLm ? "a causal LM (perplexity, top-1 agreement)" : "an encoder (embedding cosine)")}, which has no figure for {name}. " +
                    (task == ModelTask.CausalLm ? "Use --max-ppl-increase or --min-top1" : "Use --min-cosine") + ", or set the task with --task", ExitCode.Usage);
        }
    }

    /// <summary>The verdict on a verification (every gate fails when it did not run); <paramref name="fromRecipe"/> names gates by recipe key.</summary>
    public static IReadOnlyList<GateResult> Check(GateBounds bounds, VerificationReport? report, bool fromRecipe = false) =>
        Check(bounds, fromRecipe, gate => report is null ? null : gate switch
        {
            Gate.MaxPplIncrease => report.PerplexityEmitted is { } e && report.PerplexityOriginal is { } o ? (e / o - 1) * 100 : null,
            Gate.MinCosine => report.MeanCosine,
            _ => report.Top1Agreement * 100,
        });

    /// <summary>The verdict on `eval`'s comparison with --reference.</summary>
    public static IReadOnlyList<GateResult> Check(GateBounds bounds, EvalReport report) =>
        Check(bounds, false, gate => gate switch
        {
            Gate.MaxPplIncrease => report.Perplexity?.RelativeIncrease * 100,
            Gate.MinCosine => report.Embedding?.MeanCosine,
            _ => report.Perplexity?.Top1Agreement * 100,
        });

    private static List<GateResult> Check(GateBounds bounds, bool fromRecipe, Func<Gate, double?> figure) =>
        bounds.Given.Select(g => (Name: fromRecipe ? GateBounds.RecipeKey(g.Gate) : GateBounds.OptionName(g.Gate), g.Gate, g.Bound, Measured: figure(g.Gate)))
            .Select(g => g.Measured is { } measured
                ? new GateResult(g.Gate, g.Name, g.Bound, measured, GateBounds.Passes(g.Gate, measured, g.Bound))
                : new GateResult(g.Gate, g.Name, g.Bound, null, false)).ToList();

    /// <summary>Names the failed gates on stderr (figure against bound) and gives the exit code: 6 when any failed, else 0.</summary>
    public static int Verdict(CliContext context, IReadOnlyList<GateResult> results, string? keptModel)
    {
        var failed = results.Where(r => !r.Passed).ToList();
        if (failed.Count == 0)
            return (int)ExitCode.Ok;
        string kept = keptModel is null ? "" : $"; {keptModel} was written and is kept";
        context.Error.WriteLine(CommandRunner.Wrap($"error: accuracy gate failed: {string.Join("; ", failed.Select(r => r.Describe()))}{kept}", CommandRunner.ParagraphWidth));
        return (int)ExitCode.GateFailed;
    }
}
