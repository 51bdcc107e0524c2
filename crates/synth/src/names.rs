//! Embedded name lists, grouped by cultural origin.
//!
//! Names are drawn within one group so that combinations look like real US
//! patient panels ("Thanh Nguyen", "María De la Cruz") rather than random
//! mash-ups, while the mix of groups, compound and accented names exercises
//! search, sorting and matching the way a real registry does. Every person
//! assembled from these lists is fictional.

use crate::rng::Draw;
use carefront_domain::directory::AdministrativeGender;

/// One group of names and the languages its patients tend to prefer.
pub(crate) struct Culture {
    /// Relative share of patients, roughly following US clinic panels.
    pub weight: u32,
    pub female: &'static [&'static str],
    pub male: &'static [&'static str],
    pub family: &'static [&'static str],
    /// BCP-47 tags with weights; `""` means no preference recorded.
    pub languages: &'static [(&'static str, u32)],
    /// How often a middle name is recorded.
    pub middle_per_mille: u32,
    /// How often two family names are joined with a hyphen.
    pub compound_per_mille: u32,
    /// How often accents were lost on the way into the record, as happens
    /// with many US systems; keeps both "José" and "Jose" in the data.
    pub unaccented_per_mille: u32,
    /// Whether women take the feminine form (-ski → -ska, -ov → -ova).
    pub gendered_family: bool,
}

/// Given names used for any sex, mostly for patients recorded as "other".
pub(crate) const UNISEX: &[&str] = &[
    "Alex", "Jordan", "Taylor", "Riley", "Casey", "Morgan", "Avery", "Quinn", "Rowan", "Sage",
    "Skyler", "Jamie", "Emerson", "Reese", "Parker", "Dakota", "Finley", "Hayden", "Kendall",
    "Peyton", "Cameron", "Blake", "Drew", "River", "Charlie", "Sam", "Eden", "Ellis", "Remy",
    "Robin", "Marlowe", "Shiloh", "Ari", "Noa", "Kai",
];

/// Index of the general US group in [`CULTURES`]; children of immigrant
/// families often carry one of its given names.
pub(crate) const GENERAL: usize = 0;

pub(crate) const CULTURES: &[Culture] = &[
    // General US (mostly English, Irish, Scottish, German, Scandinavian origin).
    Culture {
        weight: 440,
        female: &[
            "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
            "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley",
            "Kimberly", "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah",
            "Stephanie", "Dorothy", "Rebecca", "Sharon", "Laura", "Cynthia", "Amy", "Kathleen",
            "Angela", "Shirley", "Brenda", "Emma", "Anna", "Pamela", "Nicole", "Samantha",
            "Katherine", "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Heather",
            "Catherine", "Diane", "Julie", "Joyce", "Victoria", "Kelly", "Christina", "Lauren",
            "Joan", "Evelyn", "Olivia", "Judith", "Megan", "Cheryl", "Andrea", "Hannah",
            "Martha", "Jacqueline", "Frances", "Gloria", "Ann", "Teresa", "Kathryn", "Sara",
            "Janice", "Jean", "Alice", "Madison", "Doris", "Abigail", "Julia", "Judy", "Grace",
            "Denise", "Amber", "Marilyn", "Beverly", "Danielle", "Theresa", "Sophia", "Marie",
            "Diana", "Brittany", "Natalie", "Isabella", "Charlotte", "Rose", "Alexis", "Kayla",
            "Harper", "Ava", "Mia", "Ella", "Chloe", "Lily", "Addison", "Aubrey", "Paisley",
            "Nora", "Hazel", "Violet", "Aurora", "Savannah", "Brooklyn", "Claire", "Stella",
            "Lucy", "Ellie", "Scarlett", "Penelope", "Eleanor", "Caroline", "Madeline", "Molly",
            "Erin", "Shannon", "Colleen", "Bridget", "Maureen", "Kathy", "Peggy", "Wendy",
            "Tammy", "Dawn", "Holly", "Tracy", "Gail", "Joanne", "Lori", "Connie", "Sheila",
            "Bonnie", "Norma", "Ruth", "Helen", "Virginia", "Lorraine", "Mildred", "Edna",
            "Florence", "Irene", "Lois", "Phyllis", "Marjorie", "Eileen", "Kaitlyn", "Mackenzie",
            "Josephine", "Delilah", "Ivy", "Willow", "Everly", "Audrey", "Piper", "Clara",
        ],
        male: &[
            "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph",
            "Thomas", "Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald",
            "Steven", "Andrew", "Paul", "Joshua", "Kenneth", "Kevin", "Brian", "George",
            "Timothy", "Ronald", "Jason", "Edward", "Jeffrey", "Ryan", "Jacob", "Gary",
            "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
            "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Frank", "Raymond", "Jack",
            "Dennis", "Jerry", "Tyler", "Aaron", "Henry", "Adam", "Douglas", "Nathan", "Peter",
            "Zachary", "Kyle", "Noah", "Ethan", "Jeremy", "Walter", "Christian", "Keith",
            "Roger", "Terry", "Austin", "Sean", "Gerald", "Carl", "Harold", "Dylan", "Arthur",
            "Lawrence", "Jesse", "Bryan", "Billy", "Bruce", "Gabriel", "Joe", "Logan", "Albert",
            "Willie", "Alan", "Eugene", "Russell", "Vincent", "Liam", "Mason", "Oliver", "Lucas",
            "Owen", "Wyatt", "Carter", "Hunter", "Connor", "Caleb", "Isaac", "Luke", "Landon",
            "Grayson", "Jackson", "Levi", "Lincoln", "Hudson", "Theodore", "Wesley", "Colton",
            "Brody", "Chase", "Cody", "Travis", "Dustin", "Derek", "Trevor", "Shane", "Brett",
            "Craig", "Todd", "Randy", "Wayne", "Ralph", "Howard", "Stanley", "Leonard",
            "Francis", "Earl", "Glenn", "Dale", "Curtis", "Neil", "Martin", "Calvin", "Barry",
            "Gordon", "Dean", "Phillip", "Victor", "Vernon", "Lloyd", "Floyd", "Herbert",
            "Harvey", "Warren", "Edwin", "Colin", "Declan", "Finn", "Beau", "Silas", "Asher",
        ],
        family: &[
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
            "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Thompson", "White", "Harris",
            "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
            "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts",
            "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart",
            "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Peterson", "Cooper", "Reed",
            "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox", "Richardson", "Wood", "Watson",
            "Brooks", "Bennett", "Gray", "James", "Hughes", "Price", "Sanders", "Myers", "Long",
            "Ross", "Foster", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Fisher",
            "Henderson", "Coleman", "Simmons", "Patterson", "Jordan", "Reynolds", "Hamilton",
            "Graham", "Wallace", "Cole", "West", "Stone", "Hayes", "Gibson", "Ellis", "Marshall",
            "Owens", "Harrison", "McDonald", "Kennedy", "Wells", "Tucker", "Porter", "Hunter",
            "Hicks", "Crawford", "Henry", "Boyd", "Mason", "Warren", "Dixon", "Burns", "Gordon",
            "Shaw", "Holmes", "Rice", "Robertson", "Black", "Daniels", "Palmer", "Mills",
            "Grant", "Knight", "Ferguson", "Rose", "Hunt", "Spencer", "Stevens", "Pierce",
            "Hudson", "Lawson", "Fletcher", "Wagner", "Schmidt", "Meyer", "Snyder", "Hoffman",
            "Schultz", "Becker", "Klein", "Weber", "Larson", "Olson", "Hansen", "Nielsen",
            "Carlson", "Erickson", "Swanson", "O'Brien", "O'Connor", "O'Neill", "McCarthy",
            "McLaughlin", "Fitzgerald", "Gallagher", "Doyle", "Brennan", "Donovan", "Quinn",
            "Byrne", "Walsh", "MacDonald", "McAllister", "MacKenzie", "Fraser", "Douglas",
            "Burke", "Lynch", "Reilly", "Delaney", "Whitaker", "Pennington", "Ashford",
            "Blackwood", "Thornton", "Whitfield", "Hollis", "Sutton", "Barlow", "Caldwell",
            "Chandler", "Dalton", "Hale", "Hartley", "Langley", "Mercer", "Norris", "Prescott",
            "Rhodes", "Sinclair", "Sterling", "Vaughn", "Whitmore", "Winslow", "St. John",
            "Van Buren", "McKinney", "Hendricks", "Lindholm", "Gustafson",
        ],
        languages: &[("en", 930), ("", 70)],
        middle_per_mille: 650,
        compound_per_mille: 15,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // African American.
    Culture {
        weight: 120,
        female: &[
            "Aaliyah", "Imani", "Keisha", "Latoya", "Tamika", "Ebony", "Jasmine", "Destiny",
            "Aisha", "Nia", "Zuri", "Kiara", "Tiana", "Jada", "Janelle", "Monique", "Yolanda",
            "Felicia", "Latasha", "Shanice", "Tanisha", "Brianna", "Sierra", "Makayla",
            "Nevaeh", "Amara", "Serenity", "Essence", "Kennedi", "Journee", "Ayanna", "Regina",
            "Gwendolyn", "Loretta", "Bernice", "Odessa", "Mattie", "Hattie", "Ernestine", "Cora",
            "Deja", "Kenya", "Precious", "Shayla", "Tierra",
        ],
        male: &[
            "DeShawn", "Jamal", "Darnell", "Terrell", "Tyrone", "Andre", "Marcus", "Malik",
            "Jalen", "Darius", "Xavier", "Isaiah", "Jermaine", "Reginald", "Cedric", "Dwayne",
            "Lamar", "Maurice", "Quincy", "Rashad", "Tremaine", "Kareem", "Devonte", "Jaylen",
            "Kendrick", "Marquis", "Terrance", "Desmond", "Roderick", "Cornelius", "Otis",
            "Leroy", "Booker", "Alonzo", "Demetrius", "Jerome", "Elijah", "Micah", "Josiah",
            "Zion", "Amir", "Khalil", "Langston", "Percy", "Clarence", "DaQuan", "Tavon",
        ],
        family: &[
            "Washington", "Jefferson", "Jackson", "Johnson", "Williams", "Brown", "Harris",
            "Robinson", "Banks", "Freeman", "Gaines", "Booker", "Coleman", "Dorsey", "Glover",
            "Holloway", "Jenkins", "Mack", "Merriweather", "Rucker", "Simmons", "Singleton",
            "Tate", "Whitley", "Woods", "Wilkins", "Hairston", "Bynum", "Mayfield", "Ragland",
            "Stallworth", "Haynes", "Boykin", "Brewer", "Burrell", "Chisholm", "Dawkins", "Epps",
            "Fields", "Gilliam", "Horne", "Ivory", "Joyner", "Lockhart", "McCoy", "Moton",
            "Oliver", "Pugh", "Rivers", "Sims", "Staton", "Thigpen", "Weathers", "Yancey",
            "Greene", "Frazier", "Battle", "Council", "McNeil", "Pettiford",
        ],
        languages: &[("en", 940), ("", 60)],
        middle_per_mille: 600,
        compound_per_mille: 10,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // Hispanic and Latino.
    Culture {
        weight: 190,
        female: &[
            "María", "Guadalupe", "Juana", "Rosa", "Ana", "Carmen", "Josefina", "Margarita",
            "Verónica", "Leticia", "Alejandra", "Gabriela", "Daniela", "Valentina", "Camila",
            "Sofía", "Isabella", "Lucía", "Ximena", "Mariana", "Fernanda", "Paola", "Adriana",
            "Claudia", "Patricia", "Yesenia", "Marisol", "Esperanza", "Dolores", "Beatriz",
            "Lourdes", "Inés", "Elena", "Natalia", "Andrea", "Jimena", "Renata", "Catalina",
            "Luz", "Maribel", "Araceli", "Yolanda", "Rocío", "Graciela", "Silvia", "Teresa",
            "Mónica", "Karla", "Itzel", "Nayeli", "Belén", "Julieta", "Abril", "Regina", "Noemí",
            "Dulce", "Brenda", "Estefanía", "Marisela", "Consuelo",
        ],
        male: &[
            "José", "Juan", "Luis", "Carlos", "Jorge", "Miguel", "Antonio", "Jesús", "Francisco",
            "Alejandro", "Manuel", "Pedro", "Ricardo", "Fernando", "Javier", "Roberto",
            "Eduardo", "Raúl", "Sergio", "Arturo", "Héctor", "Ramón", "Rubén", "Óscar", "Andrés",
            "Diego", "Mateo", "Santiago", "Sebastián", "Emiliano", "Leonardo", "Joaquín", "Iker",
            "Gael", "Tomás", "Martín", "Julián", "Rafael", "Ernesto", "Guillermo", "Gustavo",
            "Alberto", "Armando", "Enrique", "Víctor", "Ángel", "Adrián", "Hugo", "Ignacio",
            "Rodrigo", "Efraín", "Agustín", "Nicolás", "Emilio", "Álvaro", "Maximiliano",
            "Alonso", "Salvador",
        ],
        family: &[
            "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez",
            "Sánchez", "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Reyes",
            "Morales", "Cruz", "Ortiz", "Gutiérrez", "Chávez", "Ramos", "Ruiz", "Álvarez",
            "Mendoza", "Castillo", "Jiménez", "Vásquez", "Moreno", "Herrera", "Medina",
            "Aguilar", "Vargas", "Guzmán", "Romero", "Fernández", "Muñoz", "Salazar", "Soto",
            "Delgado", "Peña", "Castro", "Contreras", "Rojas", "Estrada", "Navarro", "Domínguez",
            "Vega", "Cortés", "Ibarra", "Espinoza", "Santiago", "Valdez", "Cabrera", "Fuentes",
            "Cervantes", "Ochoa", "Figueroa", "Acosta", "Sandoval", "Orozco", "Montoya",
            "Quintero", "Serrano", "Zamora", "Carrillo", "Velázquez", "Luna", "Benítez",
            "Maldonado", "Rosario", "Cordero", "Pacheco", "Núñez", "Ayala", "Villanueva",
            "Trujillo", "Tapia", "Mejía", "Solís", "Arellano", "De la Cruz", "De León",
            "De los Santos", "Del Río", "De la Rosa", "San Martín", "García-López",
            "Hernández-Ruiz", "Martínez-Soto", "Ruiz-Díaz", "Pérez-Gómez", "Ybarra", "Zúñiga",
        ],
        languages: &[("en", 500), ("es", 440), ("", 60)],
        middle_per_mille: 400,
        compound_per_mille: 80,
        unaccented_per_mille: 600,
        gendered_family: false,
    },
    // Chinese (Mandarin pinyin and Cantonese romanizations).
    Culture {
        weight: 30,
        female: &[
            "Mei", "Li", "Xiu", "Ying", "Jing", "Hui", "Yan", "Fang", "Lan", "Xin", "Yu", "Jia",
            "Ling", "Qing", "Xiaoling", "Meiling", "Yun", "Wen", "Hong", "Min", "Jiayi", "Yuxin",
            "Zihan", "Ruoxi", "Xinyi", "Shu", "Na", "Lili", "Ting", "Yue",
        ],
        male: &[
            "Wei", "Jun", "Hao", "Ming", "Lei", "Jian", "Tao", "Qiang", "Bo", "Gang", "Yong",
            "Jie", "Zhiwei", "Haoran", "Yuchen", "Zihao", "Junjie", "Jianguo", "Guang", "Kai",
            "Peng", "Feng", "Long", "Xiang", "Bin", "Chao", "Dong", "Hua", "Liang", "Rui",
        ],
        family: &[
            "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu",
            "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Luo", "Gao", "Zheng", "Liang", "Xie",
            "Song", "Tang", "Han", "Feng", "Deng", "Cao", "Peng", "Zeng", "Xiao", "Tian", "Dong",
            "Pan", "Yuan", "Cai", "Jiang", "Yu", "Du", "Ye", "Cheng", "Wei", "Su", "Lu", "Ding",
            "Ren", "Shen", "Yao", "Chan", "Wong", "Leung", "Chow", "Lam", "Ng", "Ho", "Cheung",
            "Tsang", "Fong",
        ],
        languages: &[("en", 500), ("zh", 300), ("yue", 120), ("", 80)],
        middle_per_mille: 150,
        compound_per_mille: 0,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // Vietnamese (as usually recorded in the US, without diacritics).
    Culture {
        weight: 20,
        female: &[
            "Anh", "Linh", "Ngoc", "Thao", "Trang", "Huong", "Lan", "Mai", "Phuong", "Thuy",
            "Hoa", "Hanh", "Hien", "Nhung", "Uyen", "Vy", "Yen", "Nga", "Diem", "Khanh", "Tuyet",
            "Loan", "Bich", "My", "Nhi", "Quynh",
        ],
        male: &[
            "Minh", "Duc", "Thanh", "Tuan", "Hung", "Dung", "Long", "Nam", "Quang", "Son", "Phuc",
            "Khoa", "Huy", "Bao", "Hieu", "Vinh", "Tien", "Cuong", "Hai", "Hoang", "Thang",
            "Trung", "Viet", "Dat", "Khang", "Tai", "Loc", "Phong", "Kiet", "Thinh",
        ],
        family: &[
            "Nguyen", "Tran", "Le", "Pham", "Hoang", "Huynh", "Phan", "Vu", "Vo", "Dang", "Bui",
            "Do", "Ho", "Ngo", "Duong", "Ly", "Truong", "Dinh", "Lam", "Mai", "Trinh", "Cao",
            "Luong", "La", "Ta", "Quach", "Thai", "Ha", "Doan", "Vuong",
        ],
        languages: &[("en", 500), ("vi", 440), ("", 60)],
        middle_per_mille: 550,
        compound_per_mille: 0,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // South Asian.
    Culture {
        weight: 30,
        female: &[
            "Priya", "Ananya", "Aishwarya", "Deepa", "Kavya", "Lakshmi", "Meera", "Neha",
            "Pooja", "Riya", "Sanjana", "Shreya", "Sunita", "Anjali", "Divya", "Isha", "Kiran",
            "Nisha", "Padma", "Radha", "Sita", "Swati", "Tanvi", "Aditi", "Diya", "Harpreet",
            "Gurpreet", "Simran", "Manpreet", "Ayesha", "Zara", "Sana", "Nadia", "Rukhsana",
            "Farhana",
        ],
        male: &[
            "Arjun", "Rahul", "Rohan", "Vikram", "Amit", "Anil", "Ashok", "Deepak", "Ganesh",
            "Karthik", "Krishna", "Manish", "Nikhil", "Pranav", "Rajesh", "Ravi", "Sanjay",
            "Suresh", "Vijay", "Aarav", "Vihaan", "Aditya", "Ishaan", "Kabir", "Harjit",
            "Manjit", "Ranjit", "Imran", "Faisal", "Tariq", "Asif", "Bilal", "Hamza", "Rizwan",
            "Sunil", "Venkat", "Srinivas", "Naveen", "Pradeep",
        ],
        family: &[
            "Patel", "Shah", "Singh", "Kumar", "Sharma", "Gupta", "Mehta", "Desai", "Joshi",
            "Reddy", "Rao", "Iyer", "Nair", "Menon", "Pillai", "Krishnan", "Subramanian",
            "Chatterjee", "Banerjee", "Mukherjee", "Das", "Bose", "Ghosh", "Kapoor", "Malhotra",
            "Chopra", "Khanna", "Agarwal", "Bhatt", "Trivedi", "Chaudhary", "Verma", "Mishra",
            "Pandey", "Yadav", "Sandhu", "Gill", "Dhillon", "Grewal", "Sidhu", "Khan", "Ahmed",
            "Hussain", "Qureshi", "Chowdhury", "Rahman", "Siddiqui", "Malik", "Iqbal", "Ali",
        ],
        languages: &[
            ("en", 750),
            ("hi", 70),
            ("gu", 50),
            ("pa", 50),
            ("ur", 30),
            ("bn", 30),
            ("", 20),
        ],
        middle_per_mille: 250,
        compound_per_mille: 0,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // Arab and Iranian.
    Culture {
        weight: 20,
        female: &[
            "Fatima", "Layla", "Noor", "Mariam", "Yasmin", "Aisha", "Huda", "Rania", "Salma",
            "Dina", "Hala", "Lina", "Reem", "Sara", "Zainab", "Amira", "Nadia", "Leila", "Samira",
            "Rana", "Jana", "Hiba", "Malak", "Rawan", "Shirin", "Parisa", "Nasrin", "Farah",
            "Soraya", "Nour",
        ],
        male: &[
            "Mohammed", "Ahmed", "Ali", "Omar", "Hassan", "Hussein", "Khalid", "Youssef",
            "Ibrahim", "Mustafa", "Karim", "Samir", "Tariq", "Ziad", "Nabil", "Fadi", "Rami",
            "Walid", "Bassam", "Amir", "Hamid", "Mahmoud", "Jamal", "Adel", "Sami", "Reza",
            "Dariush", "Farid", "Kamal", "Bilal", "Issa", "Elias", "Georges",
        ],
        family: &[
            "Haddad", "Khoury", "Nasser", "Hassan", "Hussein", "Abdullah", "Saleh", "Mansour",
            "Aziz", "Farah", "Karam", "Awad", "Hamdan", "Said", "Barakat", "Darwish", "Ghanem",
            "Habib", "Jaber", "Khalil", "Mahmoud", "Najjar", "Odeh", "Rahal", "Sabbagh",
            "Shaheen", "Suleiman", "Yousef", "Zayed", "Al-Amin", "Al-Masri", "Al-Sayed",
            "El-Khoury", "Abu-Hamdan", "Bakr", "Qasim", "Hosseini", "Rahimi", "Karimi",
            "Mohammadi", "Tehrani", "Ahmadi", "Sadeghi", "Moradi", "Kazemi", "Ebrahimi",
            "Nazari", "Jafari",
        ],
        languages: &[("en", 550), ("ar", 300), ("fa", 100), ("", 50)],
        middle_per_mille: 200,
        compound_per_mille: 0,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // Korean.
    Culture {
        weight: 15,
        female: &[
            "Ji-woo", "Seo-yeon", "Min-ji", "Soo-jin", "Hye-jin", "Eun-ji", "Ji-hye", "Yoon-seo",
            "Ha-eun", "Su-bin", "Ji-min", "Da-eun", "Seo-yun", "Ye-jin", "Mi-kyung", "Young-hee",
            "Jung-ah", "Hyun-joo", "Sun-hee",
        ],
        male: &[
            "Min-jun", "Seo-jun", "Ji-ho", "Joon-young", "Hyun-woo", "Dong-hyun", "Sung-min",
            "Jae-won", "Tae-yang", "Jin-woo", "Sang-hoon", "Young-ho", "Kyung-soo", "Woo-jin",
            "Do-yoon", "Si-woo", "Jun-seo", "Seung-hyun",
        ],
        family: &[
            "Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han",
            "Oh", "Seo", "Shin", "Kwon", "Hwang", "Ahn", "Song", "Yoo", "Hong", "Jeon", "Go",
            "Moon", "Yang", "Baek", "Nam", "Ryu",
        ],
        languages: &[("en", 550), ("ko", 400), ("", 50)],
        middle_per_mille: 100,
        compound_per_mille: 0,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // Filipino.
    Culture {
        weight: 15,
        female: &[
            "Maria", "Kristine", "Jocelyn", "Maricel", "Rowena", "Lorna", "Marites", "Analyn",
            "Cristina", "Rosalinda", "Leah", "Joy", "Angelica", "Princess", "Czarina", "Shiela",
            "Rhea", "Jasmin", "Marivic", "Lovely",
        ],
        male: &[
            "Jose", "Juan", "Mark", "Jayson", "Rommel", "Ronaldo", "Rodel", "Reynaldo", "Arnel",
            "Jomar", "Rogelio", "Dante", "Efren", "Bienvenido", "Ferdinand", "Renato", "Noel",
            "Jericho", "Carlo", "Emmanuel",
        ],
        family: &[
            "Santos", "Reyes", "Cruz", "Bautista", "Ocampo", "Garcia", "Mendoza", "Torres",
            "Tomas", "Andrada", "Castillo", "Flores", "Villanueva", "Ramos", "Castro", "Rivera",
            "Aquino", "Navarro", "Salazar", "Mercado", "Aguilar", "Dela Cruz", "Del Rosario",
            "De Guzman", "Delos Reyes", "Manalo", "Pangilinan", "Macaraeg", "Dimaculangan",
            "Magbanua", "Soriano", "Tolentino", "Lacson", "Domingo", "Gonzales", "Panganiban",
        ],
        languages: &[("en", 800), ("tl", 150), ("", 50)],
        middle_per_mille: 600,
        compound_per_mille: 0,
        unaccented_per_mille: 0,
        gendered_family: false,
    },
    // European (French, French-Canadian, German, Italian, Polish, Czech,
    // Hungarian, Greek, Dutch, Nordic, Irish).
    Culture {
        weight: 60,
        female: &[
            "Zoë", "Chloé", "Renée", "Amélie", "Margaux", "Élise", "Hélène", "Céline", "Anaïs",
            "Noémie", "Léa", "Maëlle", "Ingrid", "Astrid", "Freya", "Siobhán", "Aoife", "Niamh",
            "Saoirse", "Giulia", "Francesca", "Chiara", "Alessandra", "Lucia", "Agnieszka",
            "Katarzyna", "Małgorzata", "Zofia", "Magdalena", "Eleni", "Sofia", "Greta", "Heidi",
            "Lena", "Anja", "Mette", "Sigrid", "Johanna", "Liesel", "Beatrice", "Ilse", "Marta",
            "Paulina", "Zsófia", "Kateřina",
        ],
        male: &[
            "François", "Étienne", "Jérôme", "Sébastien", "Benoît", "Thierry", "Rémi", "Loïc",
            "Søren", "Björn", "Lars", "Anders", "Nils", "Magnus", "Henrik", "Sven", "Jürgen",
            "Matthias", "Klaus", "Dieter", "Stefan", "Lukas", "Florian", "Giovanni", "Marco",
            "Luca", "Alessandro", "Matteo", "Giuseppe", "Vincenzo", "Paolo", "Stefano", "Piotr",
            "Krzysztof", "Tomasz", "Wojciech", "Paweł", "Jakub", "Mateusz", "Dimitrios",
            "Nikolaos", "Konstantinos", "Yannis", "Seán", "Cian", "Ciarán", "Oisín", "Niall",
            "Pádraig", "Gábor", "Jiří",
        ],
        family: &[
            "Müller", "Schneider", "Fischer", "Weiss", "Schäfer", "Koch", "Bauer", "Richter",
            "Wolf", "Schröder", "Neumann", "Zimmermann", "Krüger", "Hartmann", "Lange", "Köhler",
            "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Bonnet", "Mercier", "Fontaine",
            "Rousseau", "Gauthier", "Leclerc", "Bélanger", "Côté", "Gagnon", "Tremblay",
            "Bouchard", "Lévesque", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano",
            "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa",
            "Giordano", "Mancini", "Lombardi", "Moretti", "Barbieri", "Di Stefano",
            "Del Vecchio", "D'Angelo", "Kowalski", "Nowak", "Wiśniewski", "Wójcik", "Kowalczyk",
            "Kamiński", "Lewandowski", "Zieliński", "Szymański", "Woźniak", "Dąbrowski",
            "Jankowski", "Mazur", "Papadopoulos", "Georgiou", "Nikolaidis", "Konstantinou",
            "Andersson", "Johansson", "Lindqvist", "Bergström", "Nyström", "Sørensen",
            "Jørgensen", "Halvorsen", "Van der Berg", "Van Dyke", "De Vries", "Janssen",
            "Van den Broek", "Vandenberg", "O'Sullivan", "MacNeil", "Dvořák", "Novák",
            "Horváth", "Kovács", "Nagy", "Szabó",
        ],
        languages: &[
            ("en", 850),
            ("fr", 30),
            ("de", 20),
            ("it", 20),
            ("pl", 40),
            ("el", 20),
            ("", 20),
        ],
        middle_per_mille: 500,
        compound_per_mille: 20,
        unaccented_per_mille: 250,
        gendered_family: true,
    },
    // Russian and Ukrainian.
    Culture {
        weight: 20,
        female: &[
            "Olga", "Natalia", "Svetlana", "Irina", "Tatiana", "Yelena", "Anastasia",
            "Ekaterina", "Oksana", "Yulia", "Daria", "Polina", "Alina", "Ksenia", "Galina",
            "Lyudmila", "Valentina", "Marina", "Vera", "Nadezhda",
        ],
        male: &[
            "Dmitri", "Sergei", "Alexei", "Ivan", "Nikolai", "Vladimir", "Andrei", "Mikhail",
            "Yuri", "Oleg", "Pavel", "Igor", "Viktor", "Maxim", "Artem", "Bohdan", "Taras",
            "Oleksandr", "Vasyl", "Kirill",
        ],
        family: &[
            "Ivanov", "Petrov", "Smirnov", "Kuznetsov", "Popov", "Sokolov", "Volkov", "Fedorov",
            "Morozov", "Novikov", "Pavlov", "Kozlov", "Lebedev", "Orlov", "Zaitsev",
            "Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Kravchenko", "Melnyk", "Boyko",
            "Kovalchuk", "Oliynyk", "Savchenko",
        ],
        languages: &[("en", 450), ("ru", 350), ("uk", 150), ("", 50)],
        middle_per_mille: 300,
        compound_per_mille: 0,
        unaccented_per_mille: 0,
        gendered_family: true,
    },
    // West and East African.
    Culture {
        weight: 20,
        female: &[
            "Amara", "Chiamaka", "Ngozi", "Adaeze", "Folake", "Funmilayo", "Abena", "Akosua",
            "Ama", "Efua", "Adwoa", "Nneka", "Chidinma", "Yetunde", "Aminata", "Fatoumata",
            "Mariama", "Hawa", "Selam", "Hiwot", "Meron", "Tigist", "Saba", "Hodan", "Fadumo",
            "Halima", "Asha", "Wanjiru", "Achieng", "Nyambura",
        ],
        male: &[
            "Chinedu", "Emeka", "Obinna", "Chukwuemeka", "Oluwaseun", "Babatunde", "Adebayo",
            "Olumide", "Kwame", "Kofi", "Kwabena", "Yaw", "Kojo", "Mamadou", "Ousmane",
            "Ibrahima", "Moussa", "Abdi", "Abdirahman", "Mohamed", "Dawit", "Yohannes",
            "Bereket", "Kebede", "Otieno", "Kamau", "Mwangi", "Oduya", "Tendai", "Sipho",
        ],
        family: &[
            "Okafor", "Okonkwo", "Eze", "Nwosu", "Adeyemi", "Adebayo", "Ogunleye", "Olawale",
            "Balogun", "Oyelaran", "Mensah", "Asante", "Owusu", "Boateng", "Appiah", "Osei",
            "Agyeman", "Diallo", "Traoré", "Keita", "Camara", "Touré", "Ndiaye", "Diop",
            "Tesfaye", "Bekele", "Haile", "Girma", "Wolde", "Abebe", "Gebremariam", "Mohamed",
            "Warsame", "Farah", "Omar", "Jama", "Kamau", "Otieno", "Mwangi", "Odhiambo",
        ],
        languages: &[
            ("en", 650),
            ("fr", 80),
            ("am", 80),
            ("so", 80),
            ("yo", 40),
            ("sw", 30),
            ("", 40),
        ],
        middle_per_mille: 350,
        compound_per_mille: 0,
        unaccented_per_mille: 300,
        gendered_family: false,
    },
    // Haitian and French Caribbean.
    Culture {
        weight: 10,
        female: &[
            "Marie", "Widline", "Fabienne", "Nadège", "Guerline", "Roseline", "Mirlande",
            "Stéphanie", "Jeanine", "Darlène", "Mireille", "Yolette",
        ],
        male: &[
            "Jean", "Jean-Baptiste", "Pierre", "Jean-Claude", "Frantz", "Jocelyn", "Réginald",
            "Fritz", "Emmanuel", "Wilner", "Yves", "Jean-Robert",
        ],
        family: &[
            "Pierre", "Jean-Baptiste", "Joseph", "Louis", "Charles", "Etienne", "Toussaint",
            "Baptiste", "Pierre-Louis", "Jean-Louis", "Desir", "Dorvil", "Augustin", "Célestin",
            "Lafontant", "Saint-Fleur", "Bien-Aimé", "Casimir", "Michel", "Lamour",
        ],
        languages: &[("en", 450), ("ht", 400), ("fr", 100), ("", 50)],
        middle_per_mille: 500,
        compound_per_mille: 0,
        unaccented_per_mille: 400,
        gendered_family: false,
    },
];

/// A person's name as it would appear on a registration form.
pub(crate) struct Name {
    pub culture: usize,
    pub given: String,
    pub middle: Option<String>,
    pub family: String,
}

/// A name for a person of the given sex and approximate age.
pub(crate) fn person_name(draw: &mut Draw, sex: AdministrativeGender, age: u32) -> Name {
    let culture_index = draw.weighted_index(CULTURES, |c| c.weight);
    let culture = &CULTURES[culture_index];
    // Younger patients from immigrant families often carry a general US
    // given name ("Kevin Nguyen"); older ones rarely do.
    let given_from = if culture_index != GENERAL && age < 45 && draw.chance(250) {
        &CULTURES[GENERAL]
    } else {
        culture
    };
    let list = given_list(draw, given_from, sex);
    let given = draw.pick(list);
    let middle = draw.chance(culture.middle_per_mille).then(|| {
        let list = given_list(draw, culture, sex);
        let mut middle = draw.pick(list);
        if middle == given {
            middle = draw.pick(UNISEX);
        }
        // Some records keep only the middle initial.
        if draw.chance(100) {
            middle.chars().next().map(String::from).unwrap_or_default()
        } else {
            middle.to_string()
        }
    });
    let mut family = draw.pick(culture.family).to_string();
    if draw.chance(culture.compound_per_mille) {
        let second = draw.pick(culture.family);
        if second != family && !family.contains(['-', ' ']) && !second.contains(['-', ' ']) {
            family.push('-');
            family.push_str(second);
        }
    }
    if culture.gendered_family && sex == AdministrativeGender::Female && draw.chance(850) {
        family = feminine_family(&family);
    }
    let mut given = given.to_string();
    let mut middle = middle;
    if draw.chance(culture.unaccented_per_mille) {
        given = fold_accents(&given);
        family = fold_accents(&family);
        middle = middle.map(|m| fold_accents(&m));
    }
    Name { culture: culture_index, given, middle, family }
}

fn given_list(draw: &mut Draw, culture: &Culture, sex: AdministrativeGender) -> &'static [&'static str] {
    match sex {
        AdministrativeGender::Female => culture.female,
        AdministrativeGender::Male => culture.male,
        AdministrativeGender::Other if draw.chance(600) => UNISEX,
        _ if draw.chance(500) => culture.female,
        _ => culture.male,
    }
}

/// The feminine form of a Slavic family name, as Polish and Russian women
/// usually carry it.
fn feminine_family(family: &str) -> String {
    if let Some(stem) = family.strip_suffix("ski") {
        format!("{stem}ska")
    } else if let Some(stem) = family.strip_suffix("cki") {
        format!("{stem}cka")
    } else if family.ends_with("ov") || family.ends_with("ev") {
        format!("{family}a")
    } else {
        family.to_string()
    }
}

/// The ASCII letter(s) a US system would store for an accented one.
fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ą' => "a",
        'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' | 'Ą' => "A",
        'é' | 'è' | 'ê' | 'ë' | 'ę' | 'ě' => "e",
        'É' | 'È' | 'Ê' | 'Ë' | 'Ę' | 'Ě' => "E",
        'í' | 'ì' | 'î' | 'ï' => "i",
        'Í' | 'Ì' | 'Î' | 'Ï' => "I",
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ő' => "o",
        'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' | 'Ø' | 'Ő' => "O",
        'ú' | 'ù' | 'û' | 'ü' | 'ů' | 'ű' => "u",
        'Ú' | 'Ù' | 'Û' | 'Ü' | 'Ů' | 'Ű' => "U",
        'ñ' | 'ń' => "n",
        'Ñ' | 'Ń' => "N",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'ś' | 'š' => "s",
        'Ś' | 'Š' => "S",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ł' => "l",
        'Ł' => "L",
        'ř' => "r",
        'Ř' => "R",
        'ý' | 'ÿ' => "y",
        'Ý' => "Y",
        'ß' => "ss",
        'æ' => "ae",
        'Æ' => "Ae",
        'œ' => "oe",
        'Œ' => "Oe",
        _ => return None,
    })
}

/// `s` with accented letters replaced by their plain ASCII letters.
pub(crate) fn fold_accents(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match fold_char(c) {
            Some(f) => out.push_str(f),
            None => out.push(c),
        }
    }
    out
}

/// Appends the lowercase ASCII letters and digits of `s` (accents folded,
/// spaces, hyphens and apostrophes dropped), as people spell their name in
/// an email address.
pub(crate) fn push_slug(out: &mut String, s: &str) {
    for c in s.chars() {
        if let Some(f) = fold_char(c) {
            out.extend(f.chars().map(|c| c.to_ascii_lowercase()));
        } else if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_lists() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
        CULTURES
            .iter()
            .flat_map(|c| [("female", c.female), ("male", c.male), ("family", c.family)])
            .chain([("unisex", UNISEX)])
    }

    #[test]
    fn lists_are_clean_and_fold_to_ascii() {
        for (kind, list) in all_lists() {
            assert!(!list.is_empty(), "{kind}");
            let mut seen = HashSet::new();
            for name in list {
                assert!(seen.insert(*name), "duplicate {kind} name {name}");
                assert_eq!(name.trim(), *name);
                assert!(name.chars().next().unwrap().is_uppercase(), "{name}");
                let folded = fold_accents(name);
                assert!(
                    folded.chars().all(|c| c.is_ascii_alphabetic() || " -'.".contains(c)),
                    "{name} folds to {folded}"
                );
                let mut slug = String::new();
                push_slug(&mut slug, name);
                assert!(!slug.is_empty() && slug.bytes().all(|b| b.is_ascii_lowercase()));
            }
        }
    }

    #[test]
    fn lists_are_large_and_varied() {
        let given: HashSet<&str> = CULTURES
            .iter()
            .flat_map(|c| c.female.iter().chain(c.male))
            .copied()
            .collect();
        let family: HashSet<&str> = CULTURES.iter().flat_map(|c| c.family).copied().collect();
        assert!(given.len() > 600, "{} given names", given.len());
        assert!(family.len() > 600, "{} family names", family.len());
        for expected in ["José", "Zoë", "De la Cruz", "García-López", "O'Brien"] {
            assert!(given.contains(expected) || family.contains(expected), "{expected}");
        }
    }

    #[test]
    fn folding_and_feminine_forms() {
        assert_eq!(fold_accents("García-López"), "Garcia-Lopez");
        assert_eq!(fold_accents("Zoë Müller"), "Zoe Muller");
        assert_eq!(feminine_family("Kowalski"), "Kowalska");
        assert_eq!(feminine_family("Ivanov"), "Ivanova");
        assert_eq!(feminine_family("Shevchenko"), "Shevchenko");
        let mut slug = String::new();
        push_slug(&mut slug, "De la Cruz");
        push_slug(&mut slug, "O'Brien");
        assert_eq!(slug, "delacruzobrien");
    }
}
