using System.Text.Json;
using OnnxQuant.Analysis;
using OnnxQuant.Passes;

namespace OnnxQuant.Recipes;

/// <summary>
/// A pass as recipes know it, declared once (docs/architecture.md, "Adding a pass"): its name, how its recipe entry
/// reads and writes (the same declaration, so a written recipe always reads back) and how a recipe gives it its
/// linears. What it needs from the pipeline (calibration, GPTQ's rows) is declared on its <see cref="PassSpec"/>.
/// </summary>
public abstract class PassDeclaration
{
    /// <summary>The "pass" key of its recipe entry, as <see cref="PassSpec.Name"/> reports it.</summary>
    public abstract string Name { get; }

    public abstract Type SpecType { get; }

    /// <summary>The entry's options (its "pass" key already read); a wrong key or value is a <see cref="RecipeError"/>.</summary>
    internal abstract PassSpec Read(JsonFields entry);

    /// <summary>Every option of the entry, defaults included, in the order docs/recipes.md lists them.</summary>
    public abstract void WriteOptions(Utf8JsonWriter writer, PassSpec spec);

    /// <summary>The spec as the recipe runs it: the selection of its scheme, the settings of the rewrite it measures for.</summary>
    public abstract PassSpec Bind(PassSpec spec, RecipeBinding binding);

    /// <summary>
    /// The entry once the whole pass list is read: a default that depends on the other passes (AWQ's clip search when a
    /// bits plan follows), or a <see cref="RecipeError"/> for a combination the pass cannot run in.
    /// </summary>
    internal virtual PassSpec Settle(PassSpec spec, JsonElement entry, IReadOnlyList<PassSpec> passes, int index) => spec;
}

/// <summary><see cref="PassDeclaration"/> for one spec type.</summary>
public abstract class PassDeclaration<TSpec> : PassDeclaration where TSpec : PassSpec
{
    public sealed override Type SpecType => typeof(TSpec);

    internal sealed override PassSpec Read(JsonFields entry) => ReadSpec(entry);

    public sealed override void WriteOptions(Utf8JsonWriter writer, PassSpec spec) => Write(writer, (TSpec)spec);

    public sealed override PassSpec Bind(PassSpec spec, RecipeBinding binding) => Bind((TSpec)spec, binding);

    private protected abstract TSpec ReadSpec(JsonFields entry);

    protected abstract void Write(Utf8JsonWriter writer, TSpec spec);

    protected abstract TSpec Bind(TSpec spec, RecipeBinding binding);
}

/// <summary>What a recipe hands its passes when it becomes a pipeline (<see cref="Recipe.Pipeline"/>).</summary>
/// <param name="W8A8">The linears the recipe gives the w8a8 scheme.</param>
/// <param name="W4">The linears the recipe gives the w4 scheme.</param>
/// <param name="Quantized">Every linear some pass quantizes (what fold-weights prepares).</param>
/// <param name="Rewrite8">The w8a8 rewrite's entry, which SmoothQuant's search measures for.</param>
/// <param name="Rewrite4">The w4 rewrite's entry, which AWQ's search and the bits plan measure for.</param>
public sealed record RecipeBinding(LinearSelection W8A8, LinearSelection W4, LinearSelection Quantized,
    W8A8RewriteSpec? Rewrite8, W4RewriteSpec? Rewrite4)
{
    /// <summary>The binding of a pass list: the rewrite entries are found among <paramref name="passes"/>.</summary>
    public static RecipeBinding Of(IReadOnlyList<PassSpec> passes, LinearSelection w8a8, LinearSelection w4, LinearSelection quantized) =>
        new(w8a8, w4, quantized, passes.OfType<W8A8RewriteSpec>().FirstOrDefault(), passes.OfType<W4RewriteSpec>().FirstOrDefault());
}
