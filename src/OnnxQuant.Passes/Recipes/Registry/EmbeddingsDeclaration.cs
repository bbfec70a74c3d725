using System.Text.Json;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;

namespace OnnxQuant.Recipes;

/// <summary>embeddings: the token embedding's bits and an included LM head's own bits, with their blocks.</summary>
public sealed class EmbeddingsDeclaration : PassDeclaration<EmbeddingHeadSpec>
{
    public override string Name => "embeddings";

    private protected override EmbeddingHeadSpec ReadSpec(JsonFields f) => ReadEmbeddings(f);

    protected override void Write(Utf8JsonWriter w, EmbeddingHeadSpec spec)
    {
        var e = spec.Options;
        RecipeWriter.WriteNullable(w, "bits", e.EmbeddingBits);
        RecipeWriter.WriteNullable(w, "lmHeadBits", spec.LmHeadBits);
        w.WriteNumber("blockSize", e.BlockSize);
        w.WriteBoolean("symmetric", e.Symmetric);
        w.WriteNumber("accuracyLevel", e.AccuracyLevel);
    }

    protected override EmbeddingHeadSpec Bind(EmbeddingHeadSpec spec, RecipeBinding binding) => new(spec.Options with { Selection = binding.Quantized });

    private static EmbeddingHeadSpec ReadEmbeddings(JsonFields f)
    {
        int? bits = ReadTableBits(f, "bits");
        int? headBits = ReadTableBits(f, "lmHeadBits");
        int block = f.Int("blockSize", 16, 256) ?? new EmbeddingHeadOptions().BlockSize;
        if (!Int4QuantOptions.IsValidBlockSize(block))
            throw new RecipeError(f.KeyPath("blockSize"), $"must be 16, 32, 64, 128 or 256 (got {block})");
        bool symmetric = f.Bool("symmetric", false);
        int level = f.Int("accuracyLevel", 0, 4) ?? 0;
        var spec = RecipePresets.Embeddings(bits, headBits, block, symmetric, level);
        if (spec is not null)
            return spec;
        f.Done(); // a misspelt "bits" is the likelier mistake: name it first
        throw new RecipeError(f.KeyPath("bits"), "and lmHeadBits are both null, so the pass would do nothing: give bits (token embeddings, 4 or 8) or lmHeadBits (the LM head, with linears.includeLmHead)");
    }

    private static int? ReadTableBits(JsonFields f, string key)
    {
        int? bits = f.Int(key, int.MinValue, int.MaxValue);
        if (bits is not (null or 4 or 8))
            throw new RecipeError(f.KeyPath(key), $"must be 4, 8 or null (got {bits})");
        return bits;
    }
}
