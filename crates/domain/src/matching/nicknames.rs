//! Given names that people use for one another: Bob for Robert, Peggy for
//! Margaret, Pepe for José, Chuy for Jesús.
//!
//! The table lists a formal name with the short forms and diminutives that
//! US front desks commonly see for it (English, and the Spanish forms common
//! in US clinics), written as the matcher normalizes names: lower-case ASCII,
//! accents folded. Two given names are related when they appear in one row.
//! A short form may belong to several rows ("Al" is Albert, Alan, Alfred…);
//! it is then related to each of those formal names, and through them the
//! formal names are *not* related to each other (Albert is not Alan).
//!
//! The list was compiled by hand from common usage; it is deliberately not
//! exhaustive (a nickname it misses still scores through Jaro–Winkler or the
//! phonetic code when the spelling is close, as with Rob/Robert).

use std::collections::HashMap;
use std::sync::LazyLock;

/// `(formal name, short forms separated by spaces)`.
pub(crate) const NICKNAMES: &[(&str, &str)] = &[
    // English, men.
    ("aaron", "ron ronnie"),
    ("abraham", "abe bram"),
    ("albert", "al bert bertie"),
    ("alan", "al"),
    ("allen", "al"),
    ("alexander", "alex al xander sandy lex alec"),
    ("alfred", "al alf alfie fred freddie"),
    ("alonzo", "lon lonnie al"),
    ("alvin", "al"),
    ("andrew", "andy drew"),
    ("anthony", "tony ant"),
    ("archibald", "archie"),
    ("arnold", "arnie"),
    ("arthur", "art artie"),
    ("augustus", "gus"),
    ("august", "gus"),
    ("barnabas", "barney"),
    ("bartholomew", "bart"),
    ("benjamin", "ben benny benji"),
    ("bernard", "bernie"),
    ("bradley", "brad"),
    ("bradford", "brad"),
    ("calvin", "cal"),
    ("cameron", "cam"),
    ("charles", "charlie chuck chas chaz chip"),
    ("christian", "chris"),
    ("christopher", "chris topher kit"),
    ("clarence", "clare"),
    ("clifford", "cliff"),
    ("clinton", "clint"),
    ("cornelius", "neil connie"),
    ("curtis", "curt"),
    ("cyrus", "cy"),
    ("daniel", "dan danny"),
    ("david", "dave davey"),
    ("dennis", "denny"),
    ("derek", "rick"),
    ("dominic", "dom nick"),
    ("donald", "don donnie"),
    ("douglas", "doug"),
    ("edgar", "ed eddie"),
    ("edmund", "ed eddie ned"),
    ("edward", "ed eddie ted teddy ned"),
    ("edwin", "ed eddie"),
    ("elias", "eli"),
    ("elijah", "eli lige"),
    ("emmanuel", "manny"),
    ("ernest", "ernie"),
    ("eugene", "gene"),
    ("ezekiel", "zeke"),
    ("francis", "frank frankie fran"),
    ("franklin", "frank frankie"),
    ("frederick", "fred freddie fritz rick"),
    ("gabriel", "gabe"),
    ("gerald", "jerry gerry"),
    ("gerard", "jerry gerry"),
    ("gilbert", "gil bert"),
    ("gregory", "greg"),
    ("harold", "hal harry"),
    ("henry", "hank harry hal"),
    ("herbert", "herb bert"),
    ("howard", "howie"),
    ("isaac", "ike"),
    ("isaiah", "ike"),
    ("jacob", "jake jack"),
    ("james", "jim jimmy jamie jem"),
    ("jeffrey", "jeff"),
    ("jeremiah", "jerry jeremy"),
    ("jeremy", "jerry"),
    ("jerome", "jerry"),
    ("john", "jack johnny jon"),
    ("jonathan", "jon john jonny nathan"),
    ("joseph", "joe joey jos"),
    ("joshua", "josh"),
    ("kenneth", "ken kenny"),
    ("lawrence", "larry laurie"),
    ("leonard", "leo len lenny"),
    ("leroy", "roy lee"),
    ("lewis", "lou"),
    ("louis", "lou louie"),
    ("luther", "luke"),
    ("lucas", "luke"),
    ("malcolm", "mal"),
    ("matthew", "matt matty"),
    ("maurice", "morris mo"),
    ("maxwell", "max"),
    ("maximilian", "max"),
    ("michael", "mike mikey mick mickey"),
    ("mitchell", "mitch"),
    ("montgomery", "monty"),
    ("nathan", "nate nat"),
    ("nathaniel", "nate nat nathan"),
    ("nicholas", "nick nicky nico"),
    ("oliver", "ollie"),
    ("oswald", "ozzie"),
    ("patrick", "pat paddy"),
    ("peter", "pete"),
    ("philip", "phil"),
    ("phillip", "phil"),
    ("randolph", "randy"),
    ("randall", "randy"),
    ("raymond", "ray"),
    ("reginald", "reggie reg"),
    ("richard", "rick ricky dick rich richie"),
    ("robert", "bob bobby rob robbie robby bert"),
    ("rodney", "rod"),
    ("roderick", "rod rick"),
    ("roger", "rog"),
    ("ronald", "ron ronnie"),
    ("russell", "russ rusty"),
    ("samuel", "sam sammy"),
    ("sebastian", "seb"),
    ("sidney", "sid"),
    ("simon", "si"),
    ("solomon", "sol"),
    ("stanley", "stan"),
    ("stephen", "steve stevie"),
    ("steven", "steve stevie"),
    ("stewart", "stu"),
    ("stuart", "stu"),
    ("sylvester", "sly"),
    ("terence", "terry"),
    ("terrance", "terry"),
    ("theodore", "ted teddy theo"),
    ("thomas", "tom tommy"),
    ("timothy", "tim timmy"),
    ("tobias", "toby"),
    ("vernon", "vern"),
    ("victor", "vic"),
    ("vincent", "vince vinny"),
    ("walter", "walt wally"),
    ("wesley", "wes"),
    ("wilbur", "will"),
    ("wilfred", "will fred"),
    ("william", "bill billy will willie willy liam"),
    ("zachary", "zach zack"),
    // English, women.
    ("abigail", "abby gail"),
    ("adelaide", "addie"),
    ("agnes", "aggie nessa"),
    ("alexandra", "alex alexa sandra sandy lexi"),
    ("alexis", "lexi alex"),
    ("alice", "allie"),
    ("alison", "ali allie"),
    ("amanda", "mandy manda"),
    ("angela", "angie"),
    ("ann", "annie nan nancy"),
    ("anna", "ann annie"),
    ("anne", "annie nan nancy"),
    ("antoinette", "toni nettie"),
    ("arlene", "arlie"),
    ("barbara", "barb barbie babs"),
    ("beatrice", "bea trixie"),
    ("belinda", "linda"),
    ("bernadette", "bernie"),
    ("beverly", "bev"),
    ("bridget", "bridie biddy"),
    ("camille", "cammie millie"),
    ("caroline", "carrie carol"),
    ("carolyn", "carrie carol"),
    ("catherine", "cathy cat kate katie"),
    ("charlotte", "lottie charlie"),
    ("christina", "chris tina chrissy"),
    ("christine", "chris tina chrissy"),
    ("cynthia", "cindy"),
    ("deborah", "deb debbie"),
    ("debra", "deb debbie"),
    ("delores", "dee lola"),
    ("diana", "di"),
    ("dorothy", "dot dottie dolly"),
    ("edith", "edie"),
    ("eleanor", "ellie nell nora"),
    (
        "elizabeth",
        "liz lizzie beth betty betsy eliza libby lisa bess",
    ),
    ("ellen", "ellie nell"),
    ("emily", "em emmy millie"),
    ("esther", "essie"),
    ("eugenia", "gene genie"),
    ("evelyn", "evie eve"),
    ("florence", "flo flossie"),
    ("frances", "fran frannie franny"),
    ("gabrielle", "gabby"),
    ("genevieve", "gen jenny"),
    ("georgina", "georgie gina"),
    ("geraldine", "gerry jerry"),
    ("gertrude", "gertie trudy"),
    ("gwendolyn", "gwen wendy"),
    ("harriet", "hattie"),
    ("helen", "nell nellie"),
    ("henrietta", "etta hettie"),
    ("isabel", "izzy bella"),
    ("isabella", "izzy bella"),
    ("jacqueline", "jackie"),
    ("janet", "jan"),
    ("janice", "jan"),
    ("jean", "jeanie"),
    ("jennifer", "jen jenny jenn"),
    ("jessica", "jess jessie"),
    ("joan", "joanie"),
    ("joanne", "jo"),
    ("josephine", "jo josie"),
    ("judith", "judy jude"),
    ("julia", "julie jules"),
    ("katherine", "kate kathy katie kat kay"),
    ("kathleen", "kathy kate katie"),
    ("kathryn", "kathy kate katie"),
    ("kimberly", "kim kimmy"),
    ("laura", "laurie"),
    ("lillian", "lily lil"),
    ("lorraine", "lori"),
    ("louise", "lou"),
    ("lucille", "lucy"),
    ("lucinda", "lucy cindy"),
    ("madeline", "maddie maddy"),
    ("madison", "maddie maddy"),
    (
        "margaret",
        "peggy maggie meg margie marge greta daisy madge",
    ),
    ("marjorie", "margie marge"),
    ("martha", "marty patty mattie"),
    ("mary", "molly polly mae mamie"),
    ("matilda", "tilly mattie"),
    ("melissa", "mel missy lissa"),
    ("michelle", "shelly mitch"),
    ("mildred", "millie"),
    ("miriam", "mimi"),
    ("nancy", "nan"),
    ("natalie", "nat"),
    ("nicole", "nikki nicky"),
    ("olivia", "liv livvy"),
    ("pamela", "pam"),
    ("patricia", "pat patty tricia trish trisha"),
    ("penelope", "penny"),
    ("priscilla", "cilla prissy"),
    ("rebecca", "becky becca"),
    ("roberta", "bobbie robbie"),
    ("rosalind", "roz"),
    ("rosemary", "rosie"),
    ("samantha", "sam sammy"),
    ("sandra", "sandy"),
    ("sarah", "sally sadie"),
    ("sara", "sally"),
    ("sharon", "shari"),
    ("stephanie", "steph stevie"),
    ("susan", "sue susie suzy"),
    ("suzanne", "sue susie suzy"),
    ("tabitha", "tabby"),
    ("teresa", "terry tess tessa"),
    ("theresa", "terry tess tessa"),
    ("valerie", "val"),
    ("veronica", "ronnie vera"),
    ("victoria", "vicky tori vickie"),
    ("virginia", "ginny ginger"),
    ("vivian", "viv"),
    ("wilhelmina", "mina willa"),
    ("winifred", "winnie freda"),
    ("yvonne", "vonnie"),
    ("zoe", "zo"),
    // Spanish (and the English forms Spanish-speaking patients often use).
    ("adolfo", "fito"),
    ("adriana", "adri"),
    ("alberto", "beto al"),
    ("alejandra", "ale alex sandra"),
    ("alejandro", "ale alex alejo jandro"),
    ("alfonso", "poncho fonso"),
    ("alfredo", "fredo"),
    ("andres", "andy"),
    ("antonio", "tono tony toni"),
    ("armando", "mando"),
    ("arturo", "turi art"),
    ("beatriz", "bea betty"),
    ("carlos", "charlie carlitos"),
    ("concepcion", "concha conchita chita"),
    ("consuelo", "chelo connie"),
    ("cristina", "cris tina"),
    ("daniela", "dani"),
    ("dolores", "lola lolita loli"),
    ("eduardo", "lalo eddie edu"),
    ("elena", "nena"),
    ("enrique", "quique kike henry"),
    ("ernesto", "neto"),
    ("esperanza", "espe"),
    ("estefania", "fanny tefi"),
    ("federico", "fede kiko"),
    ("felipe", "pipe"),
    ("fernanda", "fer"),
    ("fernando", "nando fer"),
    ("francisca", "paca paquita pancha"),
    ("francisco", "paco pancho curro frank kiko"),
    ("gabriela", "gaby gabi"),
    ("gonzalo", "chalo"),
    ("graciela", "chela grace"),
    ("guadalupe", "lupe lupita pita"),
    ("guillermo", "memo willy"),
    ("gustavo", "tavo gus"),
    ("ignacio", "nacho"),
    ("isabel", "chabela"),
    ("jesus", "chuy chucho"),
    ("joaquin", "quino"),
    ("jorge", "coque george"),
    ("jose", "pepe chepe joe cheo"),
    ("josefina", "pepa pepita fina chepa"),
    ("juan", "juanito johnny"),
    ("leticia", "lety"),
    ("lourdes", "lulu"),
    ("luis", "lucho"),
    ("manuel", "manny manolo manolito"),
    ("margarita", "margie rita"),
    ("maria", "mari mary"),
    ("mariana", "mari"),
    ("maribel", "mari"),
    ("mercedes", "meche mercy"),
    ("miguel", "mike"),
    ("natalia", "nati"),
    ("nicolas", "nico"),
    ("pedro", "perico pete"),
    ("rafael", "rafa rafi"),
    ("ramon", "moncho"),
    ("ricardo", "richie ricky"),
    ("roberto", "beto tito bob"),
    ("rodrigo", "rigo"),
    ("rosario", "chayo charo"),
    ("salvador", "chava salva"),
    ("santiago", "santi chago"),
    ("sebastian", "sebas"),
    ("socorro", "coco"),
    ("teresa", "tere"),
    ("vicente", "chente"),
    ("victoria", "vicki"),
    ("yolanda", "yoli"),
    // Other common US panel names.
    ("aleksandr", "sasha alex"),
    ("alexei", "alyosha lyosha"),
    ("dmitri", "dima mitya"),
    ("ekaterina", "katya katia kate"),
    ("giuseppe", "joe beppe peppe"),
    ("ivan", "vanya"),
    ("mikhail", "misha"),
    ("nikolai", "kolya nick"),
    ("oleksandr", "sasha alex"),
    ("svetlana", "sveta lana"),
    ("tatiana", "tanya tania"),
    ("vladimir", "vova volodya vlad"),
    ("yelena", "lena"),
    ("anastasia", "nastya stacy ana"),
    ("lyudmila", "luda mila"),
    ("nadezhda", "nadia"),
    ("natalya", "natasha"),
    ("olga", "olya"),
    ("pavel", "pasha"),
    ("sergei", "seryozha"),
    ("yulia", "julia"),
    ("vasyl", "vasya"),
    ("katarzyna", "kasia"),
    ("malgorzata", "gosia"),
    ("wojciech", "wojtek"),
    ("tomasz", "tomek"),
    ("krzysztof", "krzys chris"),
    ("magdalena", "magda"),
    ("johanna", "hanna jo"),
    ("nikolaos", "nikos nick"),
    ("konstantinos", "kostas gus"),
    ("dimitrios", "jimmy takis"),
    ("yannis", "john"),
    ("padraig", "patrick"),
];

/// Every name of the table with the rows it appears in (at most this many).
pub(crate) const MAX_GROUPS: usize = 10;

/// Row numbers a name belongs to, padded with `u16::MAX`.
pub(crate) type Groups = [u16; MAX_GROUPS];

pub(crate) const NO_GROUPS: Groups = [u16::MAX; MAX_GROUPS];

static INDEX: LazyLock<HashMap<&'static str, Groups>> = LazyLock::new(|| {
    let mut index: HashMap<&'static str, Groups> = HashMap::new();
    for (row, (formal, short)) in NICKNAMES.iter().enumerate() {
        let row = u16::try_from(row).expect("table fits u16");
        for name in std::iter::once(*formal).chain(short.split(' ')) {
            let groups = index.entry(name).or_insert(NO_GROUPS);
            if groups.contains(&row) {
                continue;
            }
            if let Some(slot) = groups.iter_mut().find(|g| **g == u16::MAX) {
                *slot = row;
            }
        }
    }
    index
});

/// The rows of [`NICKNAMES`] that a normalized given name belongs to.
pub(crate) fn groups(normalized: &str) -> Groups {
    INDEX.get(normalized).copied().unwrap_or(NO_GROUPS)
}

/// Whether two names share a row of the table.
pub(crate) fn related(a: &Groups, b: &Groups) -> bool {
    a.iter()
        .take_while(|g| **g != u16::MAX)
        .any(|g| b.contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_normalized_and_large() {
        let mut pairs = 0;
        for (formal, short) in NICKNAMES {
            assert!(formal.bytes().all(|b| b.is_ascii_lowercase()), "{formal}");
            for s in short.split(' ') {
                assert!(
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase()),
                    "{formal}: '{s}'"
                );
                pairs += 1;
            }
        }
        assert!(pairs >= 400, "{pairs} pairs");
        for (name, g) in INDEX.iter() {
            // No name is silently dropped from a row for lack of slots.
            let rows = NICKNAMES
                .iter()
                .filter(|(f, s)| f == name || s.split(' ').any(|x| x == *name))
                .count();
            let kept = g.iter().filter(|x| **x != u16::MAX).count();
            assert_eq!(rows, kept, "{name} is in {rows} rows, more than MAX_GROUPS");
        }
    }

    #[test]
    fn relations() {
        let r = |a: &str, b: &str| related(&groups(a), &groups(b));
        assert!(r("bob", "robert"));
        assert!(r("robert", "bob"));
        assert!(r("bob", "rob"), "both short for Robert");
        assert!(r("peggy", "margaret"));
        assert!(r("bill", "william"));
        assert!(r("pepe", "jose"));
        assert!(r("lupe", "guadalupe"));
        assert!(r("chuy", "jesus"));
        assert!(r("al", "albert") && r("al", "alan"));
        assert!(
            !r("albert", "alan"),
            "formal names are not related through a short form"
        );
        assert!(!r("robert", "william"));
        assert!(!r("zzz", "zzz"), "unknown names have no rows");
    }
}
