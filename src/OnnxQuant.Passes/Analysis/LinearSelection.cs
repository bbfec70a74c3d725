using System.Text.RegularExpressions;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>
/// Which linears get quantized: all constant-weight MatMul/Gemm nodes except those whose name matches an --exclude
/// pattern (a glob with * and ?, or a regex written /like this/) and, unless included, the LM head (the linear named
/// lm_head, or whose output reaches a graph output named like "logits" through Casts). A recipe gives each rewrite pass
/// its own selection (docs/recipes.md, "Linears"): the linears matching its <see cref="Only"/> patterns (when it has
/// any), minus those matching an exclusion.
/// </summary>
public sealed class LinearSelection
{
    private readonly IReadOnlyList<(string Pattern, Regex Regex)> _exclude;
    private readonly IReadOnlyList<(string Pattern, Regex Regex)>? _only;
    private readonly string _source;

    /// <param name="only">When not null, only linears matching one of these patterns are selected (a recipe's overrides for this pass's scheme).</param>
    /// <param name="source">How the detail of an exclusion names where the pattern came from ("--exclude", "the recipe").</param>
    /// <param name="lmHeadBits">With <paramref name="includeLmHead"/>: the head's own bits (<see cref="LmHeadBits"/>).</param>
    public LinearSelection(IEnumerable<string>? exclude = null, bool includeLmHead = false, IEnumerable<string>? only = null, string source = "--exclude",
        int? lmHeadBits = null)
    {
        _source = source;
        _exclude = (exclude ?? []).Select(p => (p, ToRegex(p, source))).ToList();
        _only = only?.Select(p => (p, ToRegex(p, source))).ToList();
        IncludeLmHead = includeLmHead;
        LmHeadBits = includeLmHead ? lmHeadBits : null;
    }

    /// <summary>The patterns a linear must match to be selected; null when every linear may be.</summary>
    public IReadOnlyList<string>? Only => _only?.Select(e => e.Pattern).ToList();

    public static LinearSelection All { get; } = new([], includeLmHead: true);

    public bool IncludeLmHead { get; }

    /// <summary>
    /// With <see cref="IncludeLmHead"/>: the head's own bits. The head is then left out of the other linears' passes
    /// (<see cref="KeepReason.LmHeadOwnBits"/>) and the embeddings and head pass quantizes it. Null: the head goes with the others.
    /// </summary>
    public int? LmHeadBits { get; }

    public IReadOnlyList<string> Patterns => _exclude.Select(e => e.Pattern).ToList();

    /// <summary>The same selection with the head at its own <paramref name="bits"/> (null: with the others); a recipe's embeddings pass sets them.</summary>
    public LinearSelection WithLmHeadBits(int? bits) => bits == LmHeadBits ? this : new(Patterns, IncludeLmHead, Only, _source, bits);

    /// <summary>Null when the options leave the linear to be quantized, else why they keep it (the pattern as detail).</summary>
    /// <param name="scope">For a body's node, where it lives ("If_3/then_branch"): patterns match the node's own name or
    /// the path `inspect` prints ("If_3/then_branch/MatMul_1").</param>
    public (KeepReason Reason, string? Detail)? Exclusion(Graph graph, string name, string weight, string output, string? scope = null)
    {
        string? path = scope is null ? null : $"{scope}/{name}";
        bool Match(Regex regex) => regex.IsMatch(name) || path is not null && regex.IsMatch(path);
        foreach (var (pattern, regex) in _exclude)
            if (Match(regex))
                return (KeepReason.ExcludedByPattern, $"{_source} '{pattern}'");
        if (_only is not null && !_only.Any(o => Match(o.Regex)))
            return (KeepReason.ExcludedByPattern, $"{_source}: not assigned to this pass");
        if ((!IncludeLmHead || LmHeadBits is not null) && IsLmHead(graph, name, weight, output))
            return IncludeLmHead ? (KeepReason.LmHeadOwnBits, $"{LmHeadBits}-bit") : (KeepReason.LmHead, null);
        return null;
    }

    public bool IsQuantized(Graph graph, LinearNode linear, string? scope = null) =>
        Exclusion(graph, linear.Name, linear.WeightName, linear.Output, scope) is null;

    /// <summary>
    /// The linear named lm_head (node or weight), or whose output reaches a graph output named like "logits" through
    /// Casts and Identities.
    /// </summary>
    public static bool IsLmHead(Graph graph, string name, string weight, string output)
    {
        if (name.Contains("lm_head", StringComparison.OrdinalIgnoreCase) || weight.Contains("lm_head", StringComparison.OrdinalIgnoreCase))
            return true;
        string value = output;
        for (int hops = 0; hops < 4; hops++)
        {
            if (graph.IsGraphOutput(value))
                return value.Contains("logits", StringComparison.OrdinalIgnoreCase);
            var readers = graph.Consumers(value);
            if (readers.Count != 1 || !(readers[0].IsOnnx("Cast") || readers[0].IsOnnx("Identity")))
                return false;
            value = readers[0].Output[0];
        }
        return false;
    }

    /// <summary>Whether <paramref name="pattern"/> (a glob or /regex/) matches the whole of <paramref name="name"/> (a glob) or part of it (a regex).</summary>
    public static bool Matches(string pattern, string name) => ToRegex(pattern, "pattern").IsMatch(name);

    // "/.../" is a regex; anything else a glob over the whole name.
    private static Regex ToRegex(string pattern, string source)
    {
        if (pattern.Length == 0)
            throw new OnnxQuantException(null, $"{source} got an empty pattern", ExitCode.Usage);
        try
        {
            if (pattern.Length >= 2 && pattern[0] == '/' && pattern[^1] == '/')
                return new Regex(pattern[1..^1], RegexOptions.CultureInvariant);
            string body = Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".");
            return new Regex($"^{body}$", RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new OnnxQuantException(null, $"{source} '{pattern}' is not a valid regular expression: {e.Message}", ExitCode.Usage, e);
        }
    }
}
