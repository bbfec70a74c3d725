using System.Text.RegularExpressions;
using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Passes.W8A8;

/// <summary>
/// Which linears get quantized: all constant-weight MatMul/Gemm nodes except those whose name matches an --exclude
/// pattern (a glob with * and ?, or a regex written /like this/) and, unless included, the LM head (the linear named
/// lm_head, or whose output reaches a graph output named like "logits" through Casts).
/// </summary>
public sealed class LinearSelection
{
    private readonly IReadOnlyList<(string Pattern, Regex Regex)> _exclude;

    public LinearSelection(IEnumerable<string>? exclude = null, bool includeLmHead = false)
    {
        _exclude = (exclude ?? []).Select(p => (p, ToRegex(p))).ToList();
        IncludeLmHead = includeLmHead;
    }

    public static LinearSelection All { get; } = new([], includeLmHead: true);

    public bool IncludeLmHead { get; }

    public IReadOnlyList<string> Patterns => _exclude.Select(e => e.Pattern).ToList();

    /// <summary>Null when the linear is quantized, else why not ("--exclude 'x'", "LM head").</summary>
    public string? ExclusionReason(Graph graph, LinearNode linear)
    {
        foreach (var (pattern, regex) in _exclude)
            if (regex.IsMatch(linear.Name))
                return $"--exclude '{pattern}'";
        if (!IncludeLmHead && IsLmHead(graph, linear))
            return "LM head (--include-lm-head to quantize it)";
        return null;
    }

    public bool IsQuantized(Graph graph, LinearNode linear) => ExclusionReason(graph, linear) is null;

    public static bool IsLmHead(Graph graph, LinearNode linear)
    {
        if (linear.Name.Contains("lm_head", StringComparison.OrdinalIgnoreCase) || linear.WeightName.Contains("lm_head", StringComparison.OrdinalIgnoreCase))
            return true;
        string value = linear.Output;
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

    // "/.../" is a regex; anything else a glob over the whole name.
    private static Regex ToRegex(string pattern)
    {
        if (pattern.Length == 0)
            throw new OnnxQuantException(null, "--exclude got an empty pattern", ExitCode.Usage);
        try
        {
            if (pattern.Length >= 2 && pattern[0] == '/' && pattern[^1] == '/')
                return new Regex(pattern[1..^1], RegexOptions.CultureInvariant);
            string body = Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".");
            return new Regex($"^{body}$", RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new OnnxQuantException(null, $"--exclude '{pattern}' is not a valid regular expression: {e.Message}", ExitCode.Usage, e);
        }
    }
}
