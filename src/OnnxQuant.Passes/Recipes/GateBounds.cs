using OnnxQuant.Analysis;

namespace OnnxQuant.Recipes;

/// <summary>An accuracy gate: which verification figure it bounds.</summary>
public enum Gate
{
    /// <summary>Perplexity increase over the input model, percent (causal LMs); at most the bound.</summary>
    MaxPplIncrease,
    /// <summary>Mean cosine of mean-pooled embeddings (encoders); at least the bound.</summary>
    MinCosine,
    /// <summary>Top-1 next-token agreement, percent (causal LMs); at least the bound.</summary>
    MinTop1,
}

/// <summary>The gates a run must pass (docs/recipes.md, "Gates"); null bounds are not checked.</summary>
public sealed record GateBounds
{
    public double? MaxPplIncrease { get; init; }

    public double? MinCosine { get; init; }

    public double? MinTop1 { get; init; }

    public static GateBounds None { get; } = new();

    /// <summary>The gates given, with their bounds, in a fixed order.</summary>
    public IReadOnlyList<(Gate Gate, double Bound)> Given =>
        new (Gate, double?)[] { (Gate.MaxPplIncrease, MaxPplIncrease), (Gate.MinCosine, MinCosine), (Gate.MinTop1, MinTop1) }
            .Where(g => g.Item2 is not null).Select(g => (g.Item1, g.Item2!.Value)).ToList();

    public bool Any => Given.Count > 0;

    /// <summary>Whether the verification of a model of <paramref name="task"/> measures the gate's figure.</summary>
    public static bool Measures(Gate gate, ModelTask task) => gate switch
    {
        Gate.MinCosine => task == ModelTask.Encoder,
        _ => task == ModelTask.CausalLm,
    };

    /// <summary>"--min-top1" on the command line, "gates.minTop1" in a recipe.</summary>
    public static string OptionName(Gate gate) => gate switch
    {
        Gate.MaxPplIncrease => "--max-ppl-increase",
        Gate.MinCosine => "--min-cosine",
        _ => "--min-top1",
    };

    public static string RecipeKey(Gate gate) => gate switch
    {
        Gate.MaxPplIncrease => "gates.maxPplIncrease",
        Gate.MinCosine => "gates.minCosine",
        _ => "gates.minTop1",
    };

    /// <summary>Whether <paramref name="measured"/> meets <paramref name="bound"/> (NaN never does).</summary>
    public static bool Passes(Gate gate, double measured, double bound) => gate == Gate.MaxPplIncrease ? measured <= bound : measured >= bound;

    /// <summary>The valid range of a bound, as an error message names it; null when <paramref name="bound"/> is in it.</summary>
    public static string? RangeError(Gate gate, double bound) => gate switch
    {
        _ when !double.IsFinite(bound) => "must be a finite number",
        Gate.MaxPplIncrease when bound < -100 => "must be a percentage of at least -100 (a negative bound demands a lower perplexity)",
        Gate.MinCosine when bound is < -1 or > 1 => "must be between -1 and 1",
        Gate.MinTop1 when bound is < 0 or > 100 => "must be a percentage between 0 and 100",
        _ => null,
    };
}
