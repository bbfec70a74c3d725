namespace OnnxQuant.Calibrate.Data;

/// <summary>
/// How many token ids a model accepts: the rows of the table its token ids gather from (SequenceLimits.Vocabulary).
/// Ids are checked against it before any run, so an id from another tokenizer is bad input naming the file and the id,
/// not ONNX Runtime's Gather error.
/// </summary>
public sealed record Vocabulary(int Size, string Model, string Table)
{
    /// <summary>The vocabulary the graph shows (its token table's rows), or null when it shows none.</summary>
    public static Vocabulary? Of(OnnxQuant.Analysis.SequenceLimits limits, string model) =>
        limits is { Vocabulary: { } size, EmbeddingTable: { } table } ? new Vocabulary(size, model, table) : null;

    /// <summary>Throws when an id of <paramref name="ids"/> from <paramref name="start"/> on is not below <see cref="Size"/>.</summary>
    /// <param name="source">Where the ids came from (a data file, or the tokenizer for text).</param>
    /// <param name="fix">The option that gives other ids ("--data", "--tokenizer").</param>
    public void EnsureContains(IReadOnlyList<int> ids, int start, string source, string fix)
    {
        for (int i = start; i < ids.Count; i++)
            if (ids[i] >= Size)
                throw new OnnxQuantException(source,
                    $"token id {ids[i]} (id {i - start + 1} of it) is not below the vocabulary of {Model}: its embedding table '{Table}' has {Size} rows. " +
                    $"The ids were made for another model; give ids from this model's tokenizer with {fix}",
                    ExitCode.BadInput);
    }
}
