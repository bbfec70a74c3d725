using System.Globalization;
using OnnxQuant.Passes;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>One summary line per vocabulary table the embeddings and head pass handled (`awq` and `smooth`).</summary>
internal static class TableLines
{
    public static void Print(IAnsiConsole console, IReadOnlyList<QuantizedTable> tables)
    {
        foreach (var t in tables)
            console.MarkupLineInterpolated($"{(t.Role == TableRole.Embedding ? "embedding" : "LM head")} {t.Tensor} [[{t.Rows}x{t.Width}]]: {Text(t)}");
    }

    // "GatherBlockQuantized 4-bit, blocks of 64, 44.7 MB -> 6.0 MB, weight error 0.0712; note".
    public static string Text(QuantizedTable t)
    {
        var inv = CultureInfo.InvariantCulture;
        if (!t.Quantized)
            return "kept in float" + (t.Note is null ? "" : $": {t.Note}");
        string bytes = t.SharedWith is null ? $"{Mb(t.BytesBefore)} -> {Mb(t.BytesAfter)}" : $"no bytes of its own (shares {t.SharedWith})";
        string error = t.WeightError is { } e ? $", weight error {e.ToString("0.0000", inv)}" : "";
        return $"{t.Op} {t.Bits}-bit{(t.Symmetric ? " symmetric" : "")}, blocks of {t.BlockSize}, {bytes}{error}" + (t.Note is null ? "" : $"; {t.Note}");
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MB";
}
