using OnnxQuant.Passes;

namespace OnnxQuant.Recipes;

/// <summary>
/// Every pass a recipe can name, in the order docs/recipes.md lists them. The recipe reader, the writer behind
/// --print-recipe and provenance, and <see cref="Recipe.Pipeline"/> dispatch through it; no other code switches over
/// pass types.
/// </summary>
public static class PassRegistry
{
    public static IReadOnlyList<PassDeclaration> All { get; } =
    [
        new FoldWeightsDeclaration(),
        new SmoothQuantDeclaration(),
        new W8A8Declaration(),
        new AwqDeclaration(),
        new BitsPlanDeclaration(),
        new W4RewriteDeclaration(),
        new EmbeddingsDeclaration(),
    ];

    /// <summary>"fold-weights", "smoothquant", ... as a recipe error lists them.</summary>
    public static string Names => string.Join(", ", All.Select(d => $"\"{d.Name}\""));

    public static PassDeclaration? Find(string name) => All.FirstOrDefault(d => d.Name == name);

    /// <summary>The declaration of <paramref name="spec"/>'s pass; a spec nobody declared is a bug.</summary>
    public static PassDeclaration For(PassSpec spec) =>
        All.FirstOrDefault(d => d.SpecType == spec.GetType())
        ?? throw new InvalidOperationException($"pass '{spec.Name}' ({spec.GetType().Name}) is not in PassRegistry.All");
}
