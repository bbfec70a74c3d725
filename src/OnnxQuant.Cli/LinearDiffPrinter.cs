using System.Globalization;
using OnnxQuant.Review;
using OnnxQuant.Analysis;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Renders the semantic diff: one row per linear, then the whole-graph changes in a short section.</summary>
public static class LinearDiffPrinter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Print(IAnsiConsole console, LinearDiff d)
    {
        var table = new Table().Border(TableBorder.Simple)
            .Title($"{d.Linears.Count} linears with a constant weight ({d.Linears.Count(r => r.Scheme != LinearScheme.Float)} rewritten, {d.Linears.Count(r => r.Scheme == LinearScheme.Float)} float)");
        bool anyKept = d.Linears.Any(r => r.KeptText is not null);
        table.AddColumns("#", "linear", "role", "before", "after", "bytes", "smoothing", "float ch");
        if (anyKept)
            table.AddColumn("kept because");
        for (int i = 0; i < d.Linears.Count; i++)
        {
            var r = d.Linears[i];
            var cells = new List<string>
            {
                (i + 1).ToString(Inv), Markup.Escape(r.Name), LinearRoles.Short(r.Role),
                Markup.Escape($"{LinearDiffText.Before(r)} {Format.Bytes(r.BytesBefore)}"),
                Markup.Escape($"{LinearDiffText.Scheme(r)} {Format.Bytes(r.BytesAfter)}"), Signed(r.BytesDelta), Markup.Escape(LinearDiffText.Smoothing(r.Smoothing)),
                r.FloatChannels == 0 ? "" : r.FloatChannels.ToString(Inv),
            };
            if (anyKept)
                cells.Add(Markup.Escape(r.KeptText ?? ""));
            table.AddRow(cells.ToArray());
        }
        console.Write(table);
        if (d.ComputedProducts.Count > 0)
            console.WriteLine($"not listed: {d.ComputedProducts.Count} products of two activations (attention), which have no weight: {Format.Names(d.ComputedProducts, 4)}");
        PrintEmbeddings(console, d.Embeddings);
        PrintGraph(console, d.Graph, d.Linears.Sum(r => r.BytesDelta));
    }

    // "token embedding embed_tokens.weight [30522x384] float32 44.7 MB -> GatherBlockQuantized 4-bit g64 asym 6.0 MB".
    private static void PrintEmbeddings(IAnsiConsole console, IReadOnlyList<EmbeddingChange> embeddings)
    {
        foreach (var e in embeddings)
        {
            string after = e.Bits is { } bits
                ? $"{e.OpAfter} {bits}-bit g{e.BlockSize} {(e.ZeroPoints ? "asym" : "sym")} {Format.Bytes(e.BytesAfter)}" + (e.SharedWith is null ? "" : $", codes shared with {e.SharedWith}")
                : $"{e.OpAfter} (float) {Format.Bytes(e.BytesAfter)}";
            console.WriteLine($"token embedding {e.Table} [{e.Rows}x{e.Width}] {e.Dtype} {Format.Bytes(e.BytesBefore)} -> {after}");
        }
    }

    private static void PrintGraph(IAnsiConsole console, GraphChanges g, long rowsDelta)
    {
        long total = g.InitializerBytesAfter - g.InitializerBytesBefore;
        console.WriteLine();
        console.WriteLine($"initializers {Format.Bytes(g.InitializerBytesBefore)} -> {Format.Bytes(g.InitializerBytesAfter)} ({Signed(total)} B): linears {Signed(rowsDelta)} B"
            + string.Concat(g.Buckets.Where(b => b.BytesAfter != b.BytesBefore).Select(b => $", {Bucket(b.Kind)} {Signed(b.BytesAfter - b.BytesBefore)} B")));
        foreach (var b in g.Buckets.Where(b => b.Kind != SharedKind.Unchanged))
            console.WriteLine($"  {Bucket(b.Kind)}: {b.CountBefore} -> {b.CountAfter} tensors, {Format.Bytes(b.BytesBefore)} -> {Format.Bytes(b.BytesAfter)}");
        if (g.ChangedInPlace.Count > 0)
            console.WriteLine($"  changed in place ({g.ChangedInPlace.Count}, e.g. norm gamma/beta scaled by smoothing): {Format.Names(g.ChangedInPlace.Select(c => c.Name), 4)}");
        if (g.InsertedMuls.Count > 0)
            console.WriteLine($"  inserted smoothing Muls ({g.InsertedMuls.Count}): {Format.Names(g.InsertedMuls, 4)}");
        foreach (var o in g.Opsets)
            console.WriteLine($"  opset {o.Domain}: {o.Before?.ToString(Inv) ?? "not imported"} -> {o.After?.ToString(Inv) ?? "not imported"}");
        if (g.MetadataChanged.Count > 0)
            console.WriteLine($"  metadata: {string.Join(", ", g.MetadataChanged)}");
        console.WriteLine($"  {g.ProvenanceNodes} nodes carry provenance (raw node lists: --nodes)");
    }

    private static string Bucket(SharedKind kind) => kind switch
    {
        SharedKind.Unchanged => "unchanged",
        SharedKind.ChangedValues => "changed in place",
        SharedKind.ActivationQuantizers => "activation quantizers",
        SharedKind.SmoothingMuls => "smoothing Muls",
        _ => "other",
    };

    private static string Signed(long bytes) => bytes.ToString("+#,0;-#,0;0", Inv);
}
